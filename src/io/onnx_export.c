/* ONNX export (docs/onnx.md): a model as an ONNX graph for inference, written with protobuf-c from code that
 * protoc-c generates out of third_party/onnx/onnx.proto at build time (make ONNX=1).
 *
 * The graph has one input "input" [N, sample shape...] and one output "output", N a named (dynamic) dimension
 * (and a sequence model's T).  Each layer kind has one small exporter below, export_<kind>(e, layer index, input
 * name, &output name), on one table indexed by layer kind (onnx_layers, beside the protobuf code: the layer table
 * of src/nn/ is a lower floor).  An exporter adds nodes and initializers through the graph builder `gb` and names
 * its output; parameters become initializers under their checkpoint names (layers.3.weight).  Activations with no
 * ONNX op of their own are composed from primitives (export_activation), each with the formula it implements.
 *
 * Layout: dendrite's tensors are NCHW and its weights are PyTorch's, which are ONNX's too (dense [units, in]
 * with Gemm transB=1, conv [F, C/groups, kh, kw]); so no weight is transposed, only reshaped (PReLU's slope) —
 * except the recurrent layers', regrouped into ONNX's W, R, B with the gates reordered (export_recurrent). */
#include "nn/model.h"
#include "nn/rnn.h"
#include "io/ini.h"
#include "io/onnx.h"

#include "onnx.pb-c.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ graph builder */

/* Every message, array and string of the graph comes from one list of blocks, freed at once; the node and
 * initializer lists grow with dn_realloc.  The first allocation failure makes every later call a no-op, and
 * onnx_gb_status() reports it, so the exporters need no check after each call. */
typedef struct gb_chunk {
    struct gb_chunk *next;
    max_align_t data[];
} gb_chunk;

typedef struct gb {
    gb_chunk *chunks;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int next_id;
    bool oom;
} gb;

static void *gb_alloc(gb *g, size_t size)
{
    if (g->oom) return NULL;
    gb_chunk *c = dn_calloc(1, sizeof *c + size);
    if (!c) {
        g->oom = true;
        return NULL;
    }
    c->next = g->chunks;
    g->chunks = c;
    return c->data;
}

static char *gb_strf(gb *g, const char *fmt, ...) DN_PRINTF(2, 3);
static char *gb_strf(gb *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? gb_alloc(g, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void gb_free(gb *g)
{
    while (g->chunks) {
        gb_chunk *next = g->chunks->next;
        dn_free(g->chunks);
        g->chunks = next;
    }
    dn_free(g->nodes);
    dn_free(g->inits);
}

static bool gb_push(gb *g, void ***list, size_t *n, size_t *cap, void *item)
{
    if (g->oom || !item) return false;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 32;
        void **l = dn_realloc(*list, c * sizeof *l);
        if (!l) {
            g->oom = true;
            return false;
        }
        *list = l;
        *cap = c;
    }
    (*list)[(*n)++] = item;
    return true;
}

/* A node `op` reading n inputs; its one output gets a fresh name from `prefix` (the layer's name).  Returns the
 * node (NULL after an allocation failure) so that attributes can be added. */
static Onnx__NodeProto *gb_node(gb *g, const char *prefix, const char *op, int n, const char *const *in)
{
    Onnx__NodeProto *node = gb_alloc(g, sizeof *node);
    char **ins = gb_alloc(g, (size_t)(n ? n : 1) * sizeof *ins);
    char **outs = gb_alloc(g, sizeof *outs);
    if (!node || !ins || !outs) return NULL;
    onnx__node_proto__init(node);
    int id = g->next_id++;
    node->name = gb_strf(g, "%s/%s_%d", prefix, op, id);
    node->op_type = gb_strf(g, "%s", op);
    for (int i = 0; i < n; i++) ins[i] = gb_strf(g, "%s", in[i]);
    outs[0] = gb_strf(g, "%s/%s_%d:0", prefix, op, id);
    node->n_input = (size_t)n;
    node->input = ins;
    node->n_output = 1;
    node->output = outs;
    if (!gb_push(g, (void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, node)) return NULL;
    return node;
}

/* The output name of a node (a stable string even when the node is NULL after a failure). */
static const char *gb_out(const Onnx__NodeProto *node) { return node && node->output[0] ? node->output[0] : "?"; }

static Onnx__AttributeProto *gb_attr(gb *g, Onnx__NodeProto *node, const char *name,
                                     Onnx__AttributeProto__AttributeType type)
{
    if (!node) return NULL;
    Onnx__AttributeProto *a = gb_alloc(g, sizeof *a);
    Onnx__AttributeProto **list = gb_alloc(g, (node->n_attribute + 1) * sizeof *list);
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = gb_strf(g, "%s", name);
    a->has_type = 1;
    a->type = type;
    if (node->n_attribute) memcpy(list, node->attribute, node->n_attribute * sizeof *list);
    list[node->n_attribute++] = a;
    node->attribute = list; /* the old list stays in the arena until the end */
    return a;
}

static void gb_attr_int(gb *g, Onnx__NodeProto *node, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = gb_attr(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
}

static void gb_attr_float(gb *g, Onnx__NodeProto *node, const char *name, double v)
{
    Onnx__AttributeProto *a = gb_attr(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = (float)v;
    }
}

static void gb_attr_ints(gb *g, Onnx__NodeProto *node, const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *a = gb_attr(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = gb_alloc(g, (size_t)n * sizeof *copy);
    if (a && copy) {
        memcpy(copy, v, (size_t)n * sizeof *copy);
        a->n_ints = (size_t)n;
        a->ints = copy;
    }
}

/* A float initializer.  Its data is not copied: it points into the model (or the arena), which outlives the
 * packing of the file. */
static const char *gb_init_float(gb *g, const char *name, int ndim, const int64_t *dims, const float *data)
{
    Onnx__TensorProto *t = gb_alloc(g, sizeof *t);
    int64_t *d = gb_alloc(g, (size_t)(ndim ? ndim : 1) * sizeof *d);
    if (!t || !d) return "?";
    onnx__tensor_proto__init(t);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = (size_t)n;
    t->float_data = (float *)data;
    t->name = gb_strf(g, "%s", name);
    if (!gb_push(g, (void ***)&g->inits, &g->n_inits, &g->cap_inits, t) || !t->name) return "?";
    return t->name;
}

/* A scalar constant (a 0-d initializer) with a fresh name. */
static const char *gb_scalar(gb *g, double v)
{
    float *f = gb_alloc(g, sizeof *f);
    if (!f) return "?";
    *f = (float)v;
    char *name = gb_strf(g, "const_%d", g->next_id++);
    return name ? gb_init_float(g, name, 0, NULL, f) : "?";
}

static const char *gb_op1(gb *g, const char *prefix, const char *op, const char *a)
{
    return gb_out(gb_node(g, prefix, op, 1, (const char *[]){a}));
}

static const char *gb_op2(gb *g, const char *prefix, const char *op, const char *a, const char *b)
{
    return gb_out(gb_node(g, prefix, op, 2, (const char *[]){a, b}));
}

/* An int64 initializer with a fresh name (Reshape's shape, Squeeze's axes). */
static const char *gb_ints(gb *g, int n, const int64_t *v)
{
    Onnx__TensorProto *t = gb_alloc(g, sizeof *t);
    int64_t *d = gb_alloc(g, sizeof *d), *data = gb_alloc(g, (size_t)n * sizeof *data);
    char *name = gb_strf(g, "const_%d", g->next_id++);
    if (!t || !d || !data || !name) return "?";
    onnx__tensor_proto__init(t);
    d[0] = n;
    memcpy(data, v, (size_t)n * sizeof *data);
    t->n_dims = 1;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_int64_data = (size_t)n;
    t->int64_data = data;
    t->name = name;
    return gb_push(g, (void ***)&g->inits, &g->n_inits, &g->cap_inits, t) ? name : "?";
}

static const char *gb_transpose(gb *g, const char *prefix, const char *x, int n, const int64_t *perm)
{
    Onnx__NodeProto *node = gb_node(g, prefix, "Transpose", 1, &x);
    gb_attr_ints(g, node, "perm", n, perm);
    return gb_out(node);
}

static const char *gb_reshape(gb *g, const char *prefix, const char *x, int n, const int64_t *shape)
{
    return gb_op2(g, prefix, "Reshape", x, gb_ints(g, n, shape));
}

/* ------------------------------------------------------------------ the export of one model */

typedef struct onnx_export {
    gb g;
    const dn_model *m;
    const char **outs; /* outs[li + 1]: the ONNX name of layer li's output; outs[0] the input */
    int opset;
} onnx_export;

/* The per-sample rank of layer li's input. */
static int input_ndim(const dn_model *m, int li) { return li == 0 ? m->in_ndim : m->layers[li - 1].out_ndim; }

/* An activation op applied to x (a tensor of per-sample rank ndim); param is prelu's alpha or swish's beta. */
static dn_status export_activation(onnx_export *e, const char *prefix, const dn_op *op, const double *attr,
                                   const dn_tensor *param, int ndim, const char *x, const char **y)
{
    gb *g = &e->g;
    const char *name = dn_op_name(op);
    Onnx__NodeProto *node = NULL;
    if (!strcmp(name, "identity")) node = gb_node(g, prefix, "Identity", 1, &x);
    else if (!strcmp(name, "sigmoid")) node = gb_node(g, prefix, "Sigmoid", 1, &x);
    else if (!strcmp(name, "tanh")) node = gb_node(g, prefix, "Tanh", 1, &x);
    else if (!strcmp(name, "relu")) node = gb_node(g, prefix, "Relu", 1, &x);
    else if (!strcmp(name, "leaky_relu") || !strcmp(name, "elu")) {
        node = gb_node(g, prefix, name[0] == 'l' ? "LeakyRelu" : "Elu", 1, &x);
        gb_attr_float(g, node, "alpha", attr[0]);
    } else if (!strcmp(name, "softmax") || !strcmp(name, "log_softmax")) {
        /* opset 13 Softmax normalises along one axis, as dendrite's op (before 13 it flattened from the axis on) */
        node = gb_node(g, prefix, name[0] == 's' ? "Softmax" : "LogSoftmax", 1, &x);
        gb_attr_int(g, node, "axis", (int64_t)attr[0]);
    } else if (!strcmp(name, "selu")) {
        node = gb_node(g, prefix, "Selu", 1, &x);
        gb_attr_float(g, node, "alpha", 1.6732632423543772);
        gb_attr_float(g, node, "gamma", 1.0507009873554805);
    } else if (!strcmp(name, "hard_sigmoid")) {
        /* ONNX HardSigmoid: max(0, min(1, alpha x + beta)) */
        node = gb_node(g, prefix, "HardSigmoid", 1, &x);
        gb_attr_float(g, node, "alpha", attr[0]);
        gb_attr_float(g, node, "beta", attr[1]);
    } else if (!strcmp(name, "hard_tanh")) {
        /* clamp(x, min, max): Clip takes its bounds as inputs since opset 11 */
        node = gb_node(g, prefix, "Clip", 3, (const char *[]){x, gb_scalar(g, attr[0]), gb_scalar(g, attr[1])});
    } else if (!strcmp(name, "prelu")) {
        /* alpha [C] is per channel (axis 1 of the batch); ONNX PRelu broadcasts its slope from the right, so it
         * becomes [C, 1, ...] with one 1 per axis after the channel axis */
        int64_t dims[DN_MAX_DIMS] = {param->shape[0]};
        int nd = param->shape[0] == 1 ? 1 : ndim;
        for (int i = 1; i < nd; i++) dims[i] = 1;
        const char *slope = gb_init_float(g, gb_strf(g, "%s.alpha", prefix), nd, dims, param->data);
        node = gb_node(g, prefix, "PRelu", 2, (const char *[]){x, slope});
    } else if (!strcmp(name, "swish")) {
        /* x sigmoid(beta x), beta learned ([1]) */
        const char *beta = gb_init_float(g, gb_strf(g, "%s.beta", prefix), 1, (int64_t[]){1}, param->data);
        const char *s = gb_op1(g, prefix, "Sigmoid", gb_op2(g, prefix, "Mul", beta, x));
        node = gb_node(g, prefix, "Mul", 2, (const char *[]){x, s});
    } else if (!strcmp(name, "mish")) {
        /* x tanh(softplus(x)) (ONNX's Mish op is opset 18) */
        const char *t = gb_op1(g, prefix, "Tanh", gb_op1(g, prefix, "Softplus", x));
        node = gb_node(g, prefix, "Mul", 2, (const char *[]){x, t});
    } else if (!strcmp(name, "gelu")) {
        const char *inner;
        if (attr[0] != 0) {
            /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
            const char *x3 = gb_op2(g, prefix, "Mul", gb_op2(g, prefix, "Mul", x, x), x);
            const char *u = gb_op2(g, prefix, "Add", x, gb_op2(g, prefix, "Mul", x3, gb_scalar(g, 0.044715)));
            inner = gb_op1(g, prefix, "Tanh", gb_op2(g, prefix, "Mul", u, gb_scalar(g, 0.7978845608028654)));
        } else {
            /* 0.5 x (1 + erf(x / sqrt 2)) (ONNX's Gelu op is opset 20) */
            inner = gb_op1(g, prefix, "Erf", gb_op2(g, prefix, "Mul", x, gb_scalar(g, 0.7071067811865476)));
        }
        const char *h = gb_op2(g, prefix, "Mul", x, gb_op2(g, prefix, "Add", inner, gb_scalar(g, 1.0)));
        node = gb_node(g, prefix, "Mul", 2, (const char *[]){h, gb_scalar(g, 0.5)});
    } else if (!strcmp(name, "softplus")) {
        const double beta = attr[0], threshold = attr[1];
        if (beta == 1 && threshold >= 20) {
            /* where x > threshold dendrite gives x, ONNX log(1 + e^x): they differ by less than e^-20 */
            node = gb_node(g, prefix, "Softplus", 1, &x);
        } else {
            /* beta x > threshold ? x : log(1 + e^(beta x)) / beta */
            const char *bx = gb_op2(g, prefix, "Mul", x, gb_scalar(g, beta));
            const char *sp = gb_op2(g, prefix, "Div", gb_op1(g, prefix, "Softplus", bx), gb_scalar(g, beta));
            const char *big = gb_op2(g, prefix, "Greater", bx, gb_scalar(g, threshold));
            node = gb_node(g, prefix, "Where", 3, (const char *[]){big, x, sp});
        }
    } else {
        return dn_error(DN_ERR_ARG, "%s: activation '%s' has no ONNX export", prefix, name);
    }
    *y = gb_out(node);
    return DN_OK;
}

static const char *param_name(const dn_model *m, const dn_layer *l, int k) { return m->tensors[l->first_tensor + k].name; }
static const dn_tensor *param(const dn_model *m, const dn_layer *l, int k) { return &m->tensors[l->first_tensor + k].t; }

static const char *init_param(onnx_export *e, const dn_layer *l, int k)
{
    const dn_tensor *t = param(e->m, l, k);
    return gb_init_float(&e->g, param_name(e->m, l, k), t->ndim, t->shape, t->data);
}

/* dense: y = x W^T + b as Gemm(transB=1), the input flattened first when a sample has more than one axis */
static dn_status export_dense(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    gb *g = &e->g;
    if (l->per_step) {
        /* over a sequence [N, T, F], at every step: MatMul with the weight [units, F] transposed, then Add of the
         * bias (Gemm takes only 2-d inputs); the weight stays an initializer under its own name */
        const char *wt = gb_transpose(g, prefix, init_param(e, l, 0), 2, (int64_t[]){1, 0});
        *y = gb_op2(g, prefix, "MatMul", x, wt);
        if (l->bias) *y = gb_op2(g, prefix, "Add", *y, init_param(e, l, 1));
        return DN_OK;
    }
    if (input_ndim(e->m, li) != 1) {
        Onnx__NodeProto *f = gb_node(g, prefix, "Flatten", 1, &x);
        gb_attr_int(g, f, "axis", 1);
        x = gb_out(f);
    }
    const char *in[3] = {x, init_param(e, l, 0), l->bias ? init_param(e, l, 1) : NULL};
    Onnx__NodeProto *node = gb_node(g, prefix, "Gemm", l->bias ? 3 : 2, in);
    gb_attr_int(g, node, "transB", 1);
    *y = gb_out(node);
    return DN_OK;
}

/* conv2d: Conv with explicit pads (pad = same was resolved to a number when the layer was built) */
static dn_status export_conv2d(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    gb *g = &e->g;
    const char *in[3] = {x, init_param(e, l, 0), l->bias ? init_param(e, l, 1) : NULL};
    Onnx__NodeProto *node = gb_node(g, prefix, "Conv", l->bias ? 3 : 2, in);
    gb_attr_ints(g, node, "kernel_shape", 2, (int64_t[]){l->kh, l->kw});
    gb_attr_ints(g, node, "strides", 2, (int64_t[]){l->stride, l->stride});
    gb_attr_ints(g, node, "pads", 4, (int64_t[]){l->pad, l->pad, l->pad, l->pad});
    gb_attr_ints(g, node, "dilations", 2, (int64_t[]){l->dilation, l->dilation});
    gb_attr_int(g, node, "group", l->groups);
    *y = gb_out(node);
    return DN_OK;
}

/* max, avg and min pooling over windows; min as -MaxPool(-x) */
static dn_status export_pool(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    gb *g = &e->g;
    const char *kind = dn_op_name(l->op);
    const bool avg = !strncmp(kind, "avg", 3), min = !strncmp(kind, "min", 3);
    if (min) x = gb_op1(g, prefix, "Neg", x);
    Onnx__NodeProto *node = gb_node(g, prefix, avg ? "AveragePool" : "MaxPool", 1, &x);
    gb_attr_ints(g, node, "kernel_shape", 2, (int64_t[]){l->kh, l->kw});
    gb_attr_ints(g, node, "strides", 2, (int64_t[]){l->stride, l->stride});
    gb_attr_ints(g, node, "pads", 4, (int64_t[]){l->pad, l->pad, l->pad, l->pad});
    /* dendrite divides by the whole window, padding included (torch's default); ONNX's default is not to */
    if (avg) gb_attr_int(g, node, "count_include_pad", 1);
    *y = min ? gb_op1(g, prefix, "Neg", gb_out(node)) : gb_out(node);
    return DN_OK;
}

static dn_status export_global_pool(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const bool avg = !strcmp(dn_op_name(e->m->layers[li].op), "global_avg_pool2d");
    *y = gb_op1(&e->g, prefix, avg ? "GlobalAveragePool" : "GlobalMaxPool", x);
    return DN_OK;
}

/* batch norm in its inference form: the running statistics */
static dn_status export_batchnorm(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    const dn_model *m = e->m;
    gb *g = &e->g;
    const dn_param *mean = &m->buffers[l->first_buffer], *var = &m->buffers[l->first_buffer + 1];
    const char *in[5] = {x, init_param(e, l, 0), init_param(e, l, 1),
                         gb_init_float(g, mean->name, 1, mean->t.shape, mean->t.data),
                         gb_init_float(g, var->name, 1, var->t.shape, var->t.data)};
    Onnx__NodeProto *node = gb_node(g, prefix, "BatchNormalization", 5, in);
    gb_attr_float(g, node, "epsilon", l->eps);
    /* ONNX's momentum weighs the old running value (PyTorch's and dendrite's the new batch); inference ignores it */
    gb_attr_float(g, node, "momentum", 1.0 - l->momentum);
    *y = gb_out(node);
    return DN_OK;
}

static dn_status export_flatten(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    if (e->m->variable_length && input_ndim(e->m, li) == 2)
        return dn_error(DN_ERR_ARG, "%s: a flatten of a sequence depends on its length T, which an exported sequence "
                                    "model leaves free (docs/onnx.md)", prefix);
    Onnx__NodeProto *node = gb_node(&e->g, prefix, "Flatten", 1, &x);
    gb_attr_int(&e->g, node, "axis", 1);
    *y = gb_out(node);
    return DN_OK;
}

static dn_status export_activation_layer(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    return export_activation(e, prefix, l->op, l->attr, l->n_tensors ? param(e->m, l, 0) : NULL, input_ndim(e->m, li),
                             x, y);
}

/* dropout is the identity at inference: no node */
static dn_status export_dropout(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    *y = x;
    return DN_OK;
}

static dn_status export_shortcut(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    *y = gb_op2(&e->g, prefix, "Add", x, e->outs[e->m->layers[li].from[0] + 1]);
    return DN_OK;
}

static dn_status export_route(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    if (l->n_from == 1) {
        *y = e->outs[l->from[0] + 1];
        return DN_OK;
    }
    const char *in[DN_MAX_ROUTE];
    for (int k = 0; k < l->n_from; k++) in[k] = e->outs[l->from[k] + 1];
    Onnx__NodeProto *node = gb_node(&e->g, prefix, "Concat", l->n_from, in);
    gb_attr_int(&e->g, node, "axis", 1);
    *y = gb_out(node);
    return DN_OK;
}

/* ------------------------------------------------------------------ sequence layers */

/* token ids [N, T] (floats holding integers, as dendrite's input is float) -> [N, T, E]: Cast to int64, then Gather
 * of the weight's rows (axis 0) */
static dn_status export_embedding(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    gb *g = &e->g;
    Onnx__NodeProto *cast = gb_node(g, prefix, "Cast", 1, &x);
    gb_attr_int(g, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    *y = gb_op2(g, prefix, "Gather", init_param(e, l, 0), gb_out(cast));
    return DN_OK;
}

/* The gate blocks of ONNX's W, R and B in dendrite's (PyTorch's) order: ONNX block j is dendrite block perm[j].
 * LSTM: ONNX i, o, f, c from PyTorch's i, f, g, o; GRU: ONNX z, r, h from PyTorch's r, z, n (h = PyTorch's n with
 * linear_before_reset = 1: r multiplies W_hn h + b_hn, as in torch.nn.GRU); RNN: one block. */
static const int lstm_gates_onnx[4] = {0, 3, 1, 2};
static const int gru_gates_onnx[3] = {1, 0, 2};
static const int rnn_gates_onnx[1] = {0};

static const int *onnx_gate_order(int rnn_kind)
{
    return rnn_kind == DN_LSTM ? lstm_gates_onnx : rnn_kind == DN_GRU ? gru_gates_onnx : rnn_gates_onnx;
}

/* dst [G*H, cols] = src [G*H, cols] with its H-row gate blocks in ONNX's order */
static void gates_to_onnx(float *dst, const float *src, int gates, const int *perm, int64_t hid, int64_t cols)
{
    for (int j = 0; j < gates; j++)
        memcpy(dst + (int64_t)j * hid * cols, src + (int64_t)perm[j] * hid * cols, (size_t)(hid * cols) * sizeof *dst);
}

static ProtobufCBinaryData gb_bytes(gb *g, const char *v)
{
    char *s = gb_strf(g, "%s", v);
    return (ProtobufCBinaryData){s ? strlen(s) : 0, (uint8_t *)s};
}

static void gb_attr_string(gb *g, Onnx__NodeProto *node, const char *name, const char *v)
{
    Onnx__AttributeProto *a = gb_attr(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (!a) return;
    a->has_s = 1;
    a->s = gb_bytes(g, v);
}

static void gb_attr_strings(gb *g, Onnx__NodeProto *node, const char *name, int n, const char *const *v)
{
    Onnx__AttributeProto *a = gb_attr(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    ProtobufCBinaryData *list = gb_alloc(g, (size_t)n * sizeof *list);
    if (!a || !list) return;
    for (int i = 0; i < n; i++) list[i] = gb_bytes(g, v[i]);
    a->n_strings = (size_t)n;
    a->strings = list;
}

/* A recurrent layer as one ONNX RNN / LSTM / GRU node per stacked layer, with ONNX's default layout (layout = 0,
 * the only one before opset 14): X [T, N, I], Y [T, D, N, H], Y_h [D, N, H], D the number of directions.
 *     x [N, T, F] -> Transpose(1, 0, 2) -> [T, N, F]
 *     per layer k: W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] = [W_b; R_b], gates in ONNX's order (above);
 *                  no initial_h / initial_c: zeros, as dendrite starts each sequence (a stateful model's carried
 *                  state is not exported: the graph is the stateless inference form)
 *     between layers, and after the last for every step: Y -> [T, N, D*H], the directions side by side as dendrite
 *                  joins them: Squeeze(axis 1) for D = 1, Transpose(0, 2, 1, 3) and Reshape(0, 0, -1) for D = 2
 *     every step (return_sequences = 1): Transpose(1, 0, 2) -> [N, T, D*H]
 *     last step only: the last layer's Y_h [D, N, H] (each direction's final state: the forward one after step
 *                  T-1, the reverse one after step 0), Transpose(1, 0, 2) and Reshape(0, -1) -> [N, D*H] */
static dn_status export_recurrent(onnx_export *e, int li, const char *prefix, const char *x, const char **y)
{
    const dn_layer *l = &e->m->layers[li];
    gb *g = &e->g;
    const int dirs = l->bidirectional ? 2 : 1, gates = dn_rnn_gates((dn_rnn_kind)l->rnn_kind);
    const int *perm = onnx_gate_order(l->rnn_kind);
    const int64_t hid = l->units, gh = gates * hid;
    const char *op = l->rnn_kind == DN_LSTM ? "LSTM" : l->rnn_kind == DN_GRU ? "GRU" : "RNN";
    x = gb_transpose(g, prefix, x, 3, (int64_t[]){1, 0, 2});
    const char *y_h = NULL;
    for (int k = 0; k < l->rnn_layers; k++) {
        const int64_t in = param(e->m, l, 4 * k * dirs)->shape[1];
        float *w = gb_alloc(g, (size_t)(dirs * gh * in) * sizeof *w), *r = gb_alloc(g, (size_t)(dirs * gh * hid) * sizeof *r);
        float *b = gb_alloc(g, (size_t)(dirs * 2 * gh) * sizeof *b);
        if (!w || !r || !b) return dn_error(DN_ERR_NOMEM, "%s: out of memory while building the ONNX graph", prefix);
        for (int d = 0; d < dirs; d++) {
            const int p = 4 * (k * dirs + d); /* weight_ih, weight_hh, bias_ih, bias_hh of this layer and direction */
            gates_to_onnx(w + d * gh * in, param(e->m, l, p)->data, gates, perm, hid, in);
            gates_to_onnx(r + d * gh * hid, param(e->m, l, p + 1)->data, gates, perm, hid, hid);
            gates_to_onnx(b + d * 2 * gh, param(e->m, l, p + 2)->data, gates, perm, hid, 1);
            gates_to_onnx(b + d * 2 * gh + gh, param(e->m, l, p + 3)->data, gates, perm, hid, 1);
        }
        const char *in_names[4] = {
            x, gb_init_float(g, gb_strf(g, "%s.W_l%d", prefix, k), 3, (int64_t[]){dirs, gh, in}, w),
            gb_init_float(g, gb_strf(g, "%s.R_l%d", prefix, k), 3, (int64_t[]){dirs, gh, hid}, r),
            gb_init_float(g, gb_strf(g, "%s.B_l%d", prefix, k), 2, (int64_t[]){dirs, 2 * gh}, b)};
        Onnx__NodeProto *node = gb_node(g, prefix, op, 4, in_names);
        gb_attr_int(g, node, "hidden_size", hid);
        if (dirs == 2) gb_attr_string(g, node, "direction", "bidirectional");
        if (l->rnn_kind == DN_GRU) gb_attr_int(g, node, "linear_before_reset", 1);
        if (l->rnn_kind == DN_RNN_TANH || l->rnn_kind == DN_RNN_RELU) {
            const char *act = l->rnn_kind == DN_RNN_RELU ? "Relu" : "Tanh";
            gb_attr_strings(g, node, "activations", dirs, (const char *[]){act, act});
        }
        const bool last_state = k == l->rnn_layers - 1 && !l->return_sequences;
        if (last_state && node) {
            /* only Y_h is read: Y's name is left empty (an optional output not computed) */
            char **outs = gb_alloc(g, 2 * sizeof *outs);
            if (!outs) return dn_error(DN_ERR_NOMEM, "%s: out of memory while building the ONNX graph", prefix);
            outs[0] = gb_strf(g, "%s", "");
            outs[1] = gb_strf(g, "%s:1", node->name);
            node->n_output = 2;
            node->output = outs;
            y_h = outs[1];
            break;
        }
        x = dirs == 1 ? gb_op2(g, prefix, "Squeeze", gb_out(node), gb_ints(g, 1, (int64_t[]){1}))
                      : gb_reshape(g, prefix, gb_transpose(g, prefix, gb_out(node), 4, (int64_t[]){0, 2, 1, 3}), 3,
                                   (int64_t[]){0, 0, -1});
    }
    if (y_h) *y = gb_reshape(g, prefix, gb_transpose(g, prefix, y_h, 3, (int64_t[]){1, 0, 2}), 2, (int64_t[]){0, -1});
    else *y = gb_transpose(g, prefix, x, 3, (int64_t[]){1, 0, 2});
    return DN_OK;
}

/* ------------------------------------------------------------------ the table */

typedef dn_status (*layer_export_fn)(onnx_export *e, int li, const char *prefix, const char *x, const char **y);

/* One row per layer kind: its exporter, and the ONNX ops it writes (for docs and messages).  The table lives here,
 * on floor 6 beside the protobuf code, not in the layer table (floor 4), which must not see ONNX. */
typedef struct onnx_layer_ops {
    layer_export_fn export;
    const char *ops;
} onnx_layer_ops;

static const onnx_layer_ops onnx_layers[] = {
    [DN_LAYER_DENSE] = {export_dense, "Gemm; over a sequence Transpose(W), MatMul, Add"},
    [DN_LAYER_ACTIVATION] = {export_activation_layer, "the activation's op or its composition"},
    [DN_LAYER_FLATTEN] = {export_flatten, "Flatten"},
    [DN_LAYER_CONV2D] = {export_conv2d, "Conv"},
    [DN_LAYER_POOL] = {export_pool, "MaxPool, AveragePool; Neg, MaxPool, Neg"},
    [DN_LAYER_GLOBAL_POOL] = {export_global_pool, "GlobalAveragePool, GlobalMaxPool"},
    [DN_LAYER_BATCHNORM] = {export_batchnorm, "BatchNormalization"},
    [DN_LAYER_DROPOUT] = {export_dropout, "(none)"},
    [DN_LAYER_SHORTCUT] = {export_shortcut, "Add"},
    [DN_LAYER_ROUTE] = {export_route, "Concat"},
    [DN_LAYER_EMBEDDING] = {export_embedding, "Cast, Gather"},
    [DN_LAYER_RECURRENT] = {export_recurrent, "Transpose, RNN / LSTM / GRU, Squeeze or Transpose and Reshape"},
};
/* a kind added to the enum without its row fails here; a row left out in the middle is caught by the test that
 * every kind has an exporter (onnx/every_layer_kind_has_an_exporter) */
_Static_assert(sizeof onnx_layers / sizeof onnx_layers[0] == DN_LAYER_KIND_COUNT, "one ONNX row per dn_layer_kind");

const char *dn_onnx_layer_ops(int kind)
{
    return kind >= 0 && kind < DN_LAYER_KIND_COUNT && onnx_layers[kind].export ? onnx_layers[kind].ops : NULL;
}

/* Layer li, then the activation fused into it (activation = ... in its cfg section). */
static dn_status export_layer(onnx_export *e, int li)
{
    const dn_layer *l = &e->m->layers[li];
    char prefix[32];
    snprintf(prefix, sizeof prefix, "layers.%d", li);
    const char *y = NULL;
    dn_status s = onnx_layers[l->kind].export(e, li, prefix, e->outs[li], &y);
    if (!s && l->act) s = export_activation(e, prefix, l->act, l->act_attr, NULL, l->out_ndim, y, &y);
    e->outs[li + 1] = y;
    return s;
}

/* ------------------------------------------------------------------ the model around the graph */

/* [N, sample shape...] with N named (any batch); seq: the sample's first axis is a sequence's T, named too (a
 * sequence model takes any length up to the one it was configured with, and ONNX has no "at most") */
static Onnx__ValueInfoProto *value_info(gb *g, const char *name, int ndim, const int64_t *sample_shape, bool seq)
{
    Onnx__ValueInfoProto *v = gb_alloc(g, sizeof *v);
    Onnx__TypeProto *type = gb_alloc(g, sizeof *type);
    Onnx__TypeProto__Tensor *tt = gb_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *shape = gb_alloc(g, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dims = gb_alloc(g, (size_t)(ndim + 1) * sizeof *dims);
    if (!v || !type || !tt || !shape || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    for (int i = 0; i <= ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = gb_alloc(g, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0 || (i == 1 && seq)) {
            /* the batch axis is dynamic: any N; and a sequence's length T */
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = gb_strf(g, "%s", i == 0 ? "N" : "T");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = sample_shape[i - 1];
        }
        dims[i] = d;
    }
    shape->n_dim = (size_t)ndim + 1;
    shape->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    v->name = gb_strf(g, "%s", name);
    v->type = type;
    return v;
}

static Onnx__StringStringEntryProto *meta_entry(gb *g, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *p = gb_alloc(g, sizeof *p);
    if (!p) return NULL;
    onnx__string_string_entry_proto__init(p);
    p->key = gb_strf(g, "%s", key);
    p->value = gb_strf(g, "%s", value);
    return p;
}

/* metadata_props: the whole cfg text ("dendrite.cfg") and each [net] setting as "net.<key>" */
static dn_status metadata(gb *g, const dn_model *m, Onnx__ModelProto *model)
{
    Onnx__StringStringEntryProto **list = NULL;
    size_t n = 0, cap = 0;
    if (m->cfg_text) {
        gb_push(g, (void ***)&list, &n, &cap, meta_entry(g, "dendrite.cfg", m->cfg_text));
        dn_ini *ini = NULL;
        if (dn_ini_parse(m->cfg_text, "cfg", &ini) == DN_OK) {
            for (int si = 0; si < ini->n_sections; si++) {
                const dn_ini_section *s = &ini->sections[si];
                if (strcmp(s->name, "net")) continue;
                for (int k = 0; k < s->n_entries; k++) {
                    char key[96];
                    snprintf(key, sizeof key, "net.%s", s->entries[k].key);
                    gb_push(g, (void ***)&list, &n, &cap, meta_entry(g, key, s->entries[k].value));
                }
            }
        }
        dn_ini_free(ini);
        dn_error_clear(); /* a cfg that no longer parses still gave its text above */
    }
    /* the list goes into the arena so that gb_free frees it with the rest */
    Onnx__StringStringEntryProto **kept = gb_alloc(g, (n ? n : 1) * sizeof *kept);
    if (kept && n) memcpy(kept, list, n * sizeof *kept);
    dn_free(list);
    if (g->oom || !kept) return DN_ERR_NOMEM;
    model->n_metadata_props = n;
    model->metadata_props = kept;
    return DN_OK;
}

static dn_status write_file(const char *path, const uint8_t *buf, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return dn_error(DN_ERR_ARG, "path too long: %s", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return dn_error(DN_ERR_IO, "cannot write %s", tmp);
    bool ok = fwrite(buf, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        remove(tmp);
        return dn_error(DN_ERR_IO, "cannot write %s", path);
    }
    return DN_OK;
}

bool dn_onnx_supported(void) { return true; }

dn_status dn_model_export_onnx(const dn_model *m, const char *path, int opset)
{
    if (!m || !path) return dn_error(DN_ERR_ARG, "dn_model_export_onnx: model or path is NULL");
    if (opset == 0) opset = DN_ONNX_OPSET;
    if (opset < 13 || opset > 17)
        return dn_error(DN_ERR_ARG, "ONNX opset %d: dendrite writes opsets 13 to 17 (Softmax's one-axis meaning, "
                                    "Clip's bound inputs)", opset);
    onnx_export e = {.m = m, .opset = opset};
    gb *g = &e.g;
    dn_status s = DN_OK;
    e.outs = gb_alloc(g, (size_t)(m->n_layers + 1) * sizeof *e.outs);
    if (!e.outs) goto nomem;
    e.outs[0] = "input";
    for (int li = 0; li < m->n_layers && !s; li++) s = export_layer(&e, li);
    if (s) goto out;
    /* the last layer's output is renamed "output" by an Identity node */
    Onnx__NodeProto *last = gb_node(g, "output", "Identity", 1, &e.outs[m->n_layers]);
    if (last) last->output[0] = gb_strf(g, "output");
    int out_ndim;
    int64_t out_shape[DN_MAX_DIMS];
    dn_model_output_shape(m, &out_ndim, out_shape);
    /* a sequence model's input is [N, T, ...], and so is its output when it is a sequence ([T, F] per sample: in a
     * sequence model a 2-d sample is one, dn_model_add_dense's rule) */
    Onnx__ValueInfoProto *vin = value_info(g, "input", m->in_ndim, m->in_shape, m->variable_length);
    Onnx__ValueInfoProto *vout = value_info(g, "output", out_ndim, out_shape, m->variable_length && out_ndim == 2);
    Onnx__ValueInfoProto **ins = gb_alloc(g, sizeof *ins), **outs = gb_alloc(g, sizeof *outs);
    Onnx__GraphProto *graph = gb_alloc(g, sizeof *graph);
    Onnx__ModelProto *model = gb_alloc(g, sizeof *model);
    Onnx__OperatorSetIdProto *ops = gb_alloc(g, sizeof *ops), **opsl = gb_alloc(g, sizeof *opsl);
    if (g->oom || !vin || !vout || !ins || !outs || !graph || !model || !ops || !opsl) goto nomem;
    onnx__graph_proto__init(graph);
    ins[0] = vin;
    outs[0] = vout;
    graph->name = gb_strf(g, "dendrite");
    graph->n_node = g->n_nodes;
    graph->node = g->nodes;
    graph->n_initializer = g->n_inits;
    graph->initializer = g->inits;
    graph->n_input = 1;
    graph->input = ins;
    graph->n_output = 1;
    graph->output = outs;
    onnx__operator_set_id_proto__init(ops);
    ops->domain = gb_strf(g, "%s", "");
    ops->has_version = 1;
    ops->version = opset;
    opsl[0] = ops;
    onnx__model_proto__init(model);
    /* IR version 7 goes with opsets 12-14, 8 with 15-18 */
    model->has_ir_version = 1;
    model->ir_version = opset >= 15 ? 8 : 7;
    model->n_opset_import = 1;
    model->opset_import = opsl;
    model->producer_name = gb_strf(g, "dendrite");
    model->producer_version = gb_strf(g, "%s", DN_VERSION);
    model->graph = graph;
    if ((s = metadata(g, m, model))) goto out;
    if (g->oom) goto nomem;
    size_t len = onnx__model_proto__get_packed_size(model);
    if (len > ((size_t)1 << 31) - 1) {
        s = dn_error(DN_ERR_ARG, "the model needs %zu bytes as ONNX; protobuf files end at 2 GiB", len);
        goto out;
    }
    uint8_t *buf = dn_alloc(len ? len : 1);
    if (!buf) goto nomem;
    onnx__model_proto__pack(model, buf);
    s = write_file(path, buf, len);
    dn_free(buf);
    goto out;
nomem:
    s = dn_error(DN_ERR_NOMEM, "out of memory while building the ONNX graph");
out:
    gb_free(g);
    return s;
}
