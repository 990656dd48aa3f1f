/* ONNX import (docs/onnx.md): an ONNX graph of feed-forward and recurrent layers, as torch.onnx.export writes them,
 * turned into an ordinary model.  The file is parsed by protobuf-c (code generated from third_party/onnx/onnx.proto).
 *
 * The nodes are read in their (topological) order.  Each ONNX value is known as the output of a dendrite layer
 * (or the model input), or as a constant (an initializer or a Constant node).  A node that computes from a layer's
 * output becomes a layer added with the C API, its parameters copied in; the layer's cfg section is written at the
 * same time.  At the end the model is rebuilt from that cfg text (the path a checkpoint is loaded through) and the
 * parameters moved over, so the model returned is the one its saved checkpoint will give back.  Around embeddings and
 * recurrent layers a value may also hold a layer's output in ONNX's layouts (value.form; the "sequence layers"
 * section), read only by that section's node patterns.
 *
 * Anything else is refused with the node's name, its op type and what the importer reads: nothing is approximated.
 * Hostile files: a size limit before reading, protobuf-c's checked parser, and every count, shape, attribute and
 * data length checked before use. */
#include "nn/model.h"

#include "onnx.pb-c.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#define ONNX_MAX_BYTES ((size_t)1 << 30) /* larger files are refused before they are read */
/* more nodes are refused: a few lookups (the reader of a value, the rest of a node pattern) scan the node list,
 * so a hostile graph costs time quadratic in its nodes; 10000 is well above the feed-forward graphs read */
#define ONNX_MAX_NODES 10000
/* a node pattern's nodes lie within this many nodes after the one it starts from (exporters write them together) */
#define PATTERN_WINDOW 64

static const char supported_ops[] =
    "Gemm, MatMul (+ Add of a bias), Conv, MaxPool, AveragePool, Neg-MaxPool-Neg (min pooling), GlobalAveragePool, "
    "GlobalMaxPool, "
    "BatchNormalization, Flatten, Reshape (to [N, -1]), Relu, Sigmoid, Tanh, LeakyRelu, Elu, Selu, Softplus, "
    "HardSigmoid, Softmax, LogSoftmax, PRelu, Clip, the node patterns of gelu (erf and tanh forms), mish, "
    "swish (x sigmoid(beta x)) and softplus with beta and threshold, Add (residual), Concat (channels), Identity, Dropout, Constant, "
    "Gather (embedding; a sequence's last step), RNN, LSTM, GRU with the Transpose, Squeeze, Reshape and shape nodes "
    "around them, MatMul (+ Add) at every step of a sequence";

typedef struct value {
    const char *name;
    int layer;                  /* the dendrite layer whose output it is; -1 the model input */
    const Onnx__TensorProto *t; /* or a constant */
    int form;                   /* 0, or its layout around a recurrent layer (FORM_* in the sequence section) */
} value;

typedef struct importer {
    const char *path;
    const Onnx__GraphProto *g;
    int opset;
    dn_model *m;
    char *cfg;
    size_t cfg_len, cfg_cap;
    value *vals;
    size_t n_vals, cap_vals;
    bool *consumed; /* nodes already read with an earlier one (the Add after a MatMul) */
    const char *meta_input; /* dendrite's metadata net.input, or NULL: a free sequence length's configured value */
} importer;

/* ------------------------------------------------------------------ helpers */

/* protobuf-c allocates through dendrite's hook; a refusal is remembered, since the parser then returns NULL just
 * as for malformed bytes */
static void *pb_alloc(void *data, size_t size)
{
    void *p = dn_alloc(size);
    if (!p) *(bool *)data = true;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    dn_free(p);
}

static dn_status cfg_printf(importer *im, const char *fmt, ...) DN_PRINTF(2, 3);
static dn_status cfg_printf(importer *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return dn_error(DN_ERR_ARG, "cfg text");
    if (im->cfg_len + (size_t)n + 1 > im->cfg_cap) {
        size_t cap = im->cfg_cap ? im->cfg_cap : 1024;
        while (cap < im->cfg_len + (size_t)n + 1) cap *= 2;
        char *c = dn_realloc(im->cfg, cap);
        if (!c) return DN_ERR_NOMEM;
        im->cfg = c;
        im->cfg_cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(im->cfg + im->cfg_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    im->cfg_len += (size_t)n;
    return DN_OK;
}

static dn_status add_value(importer *im, const char *name, int layer, const Onnx__TensorProto *t)
{
    if (!name || !*name) return DN_OK;
    if (im->n_vals == im->cap_vals) {
        size_t cap = im->cap_vals ? 2 * im->cap_vals : 64;
        value *v = dn_realloc(im->vals, cap * sizeof *v);
        if (!v) return DN_ERR_NOMEM;
        im->vals = v;
        im->cap_vals = cap;
    }
    im->vals[im->n_vals++] = (value){name, layer, t, 0};
    return DN_OK;
}

/* The latest value of that name (a graph may not redefine one, but the latest is the right one if it does). */
static const value *find_value(const importer *im, const char *name)
{
    for (size_t i = im->n_vals; i-- > 0;)
        if (!strcmp(im->vals[i].name, name)) return &im->vals[i];
    return NULL;
}

static const char *node_name(const Onnx__NodeProto *n) { return n->name && *n->name ? n->name : "(unnamed)"; }

static dn_status node_error(const importer *im, const Onnx__NodeProto *n, const char *fmt, ...) DN_PRINTF(3, 4);
static dn_status node_error(const importer *im, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dn_error(DN_ERR_FORMAT, "%s: node '%s' (%s): %s", im->path, node_name(n), n->op_type, msg);
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}

static double attr_float(const Onnx__NodeProto *n, const char *name, double def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}

/* An ints attribute of exactly `want` entries (absent: all `def`); false when it has another length. */
static bool attr_ints(const Onnx__NodeProto *n, const char *name, int want, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(n, name);
    for (int i = 0; i < want; i++) out[i] = def;
    if (!a) return true;
    if (a->n_ints != (size_t)want) return false;
    memcpy(out, a->ints, (size_t)want * sizeof *out);
    return true;
}

/* Only the attributes in `known` (a NULL-terminated list) may be present: an unknown one is refused, never
 * ignored.  Before opset 6 many ops carried `consumed_inputs`, a hint for in-place memory reuse without meaning for
 * the result: it is let through there. */
static dn_status only_attrs(const importer *im, const Onnx__NodeProto *n, const char *const *known)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        bool ok = im->opset < 6 && n->attribute[i]->name && !strcmp(n->attribute[i]->name, "consumed_inputs");
        for (int k = 0; known[k] && !ok; k++) ok = n->attribute[i]->name && !strcmp(n->attribute[i]->name, known[k]);
        if (!ok) return node_error(im, n, "attribute '%s' is not supported", n->attribute[i]->name ? n->attribute[i]->name : "");
    }
    return DN_OK;
}

static int64_t tensor_numel(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] && n > ((int64_t)1 << 31) / t->dims[i])) return -1;
        n *= t->dims[i];
    }
    return n;
}

/* A float tensor's data in a new buffer (dn_free it): from float_data or little-endian raw_data. */
static dn_status tensor_floats(const importer *im, const Onnx__NodeProto *n, const Onnx__TensorProto *t, float **out)
{
    *out = NULL;
    int64_t numel = tensor_numel(t);
    if (numel < 0) return node_error(im, n, "tensor '%s' has a bad or too large shape", t->name ? t->name : "");
    if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return node_error(im, n, "tensor '%s' is not float32 (only float32 models are read)", t->name ? t->name : "");
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return node_error(im, n, "tensor '%s' is stored in an external file (not supported)", t->name ? t->name : "");
    float *buf = dn_alloc((size_t)(numel ? numel : 1) * sizeof *buf);
    if (!buf) return DN_ERR_NOMEM;
    if (t->has_raw_data && t->raw_data.len == (size_t)numel * 4) {
        const uint8_t *p = t->raw_data.data;
        for (int64_t i = 0; i < numel; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&buf[i], &u, 4);
        }
    } else if (!t->has_raw_data && t->n_float_data == (size_t)numel) {
        if (numel) memcpy(buf, t->float_data, (size_t)numel * sizeof *buf);
    } else {
        dn_free(buf);
        return node_error(im, n, "tensor '%s' holds %zu bytes for %lld floats", t->name ? t->name : "",
                          t->has_raw_data ? t->raw_data.len : t->n_float_data * 4, (long long)numel);
    }
    *out = buf;
    return DN_OK;
}

/* An int64 tensor's values (at most max). */
static dn_status tensor_ints(const importer *im, const Onnx__NodeProto *n, const Onnx__TensorProto *t, int64_t *out,
                             int max, int *count)
{
    int64_t numel = tensor_numel(t);
    if (numel < 0 || numel > max || !t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return node_error(im, n, "tensor '%s' is not a short int64 list", t->name ? t->name : "");
    if (t->has_raw_data && t->raw_data.len == (size_t)numel * 8) {
        for (int64_t i = 0; i < numel; i++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = u << 8 | t->raw_data.data[8 * i + b];
            memcpy(&out[i], &u, 8);
        }
    } else if (!t->has_raw_data && t->n_int64_data == (size_t)numel) {
        if (numel) memcpy(out, t->int64_data, (size_t)numel * sizeof *out); /* none: int64_data may be NULL */
    } else {
        return node_error(im, n, "tensor '%s' holds the wrong number of bytes", t->name ? t->name : "");
    }
    *count = (int)numel;
    return DN_OK;
}

/* Input k of node n as a constant; NULL with an error when it is not one. */
static const Onnx__TensorProto *const_input(const importer *im, const Onnx__NodeProto *n, size_t k, dn_status *s)
{
    const value *v = k < n->n_input && n->input[k] && *n->input[k] ? find_value(im, n->input[k]) : NULL;
    if (v && v->t) return v->t;
    *s = node_error(im, n, "input %zu must be a constant (an initializer)", k);
    return NULL;
}

/* Whether input k is present (optional inputs may be missing or "") */
static bool has_input(const Onnx__NodeProto *n, size_t k) { return k < n->n_input && n->input[k] && *n->input[k]; }

/* The layer whose output input k is; -1 the model input.  Errors for a constant or an unknown name. */
static dn_status layer_input(const importer *im, const Onnx__NodeProto *n, size_t k, int *layer)
{
    *layer = -1;
    const value *v = has_input(n, k) ? find_value(im, n->input[k]) : NULL;
    if (!v) return node_error(im, n, "input %zu '%s' is not computed by an earlier node", k, has_input(n, k) ? n->input[k] : "");
    if (v->t) return node_error(im, n, "input %zu '%s' is a constant where the data flows (not supported)", k, v->name);
    *layer = v->layer;
    return DN_OK;
}

/* Makes layer `layer`'s output the tail of the model (where the next layer reads), with a [route] if needed. */
static dn_status make_tail(importer *im, const Onnx__NodeProto *n, int layer)
{
    if (layer == im->m->n_layers - 1) return DN_OK;
    if (layer < 0)
        return node_error(im, n, "reads the model input after other layers have (a dendrite model reads its input once)");
    dn_status s = dn_model_add_route(im->m, 1, &layer);
    if (!s) s = cfg_printf(im, "\n[route]\nlayers = %d\n", layer);
    return s;
}

/* The data input (input 0) as the model's tail: its layer index in *layer. */
static dn_status data_input(importer *im, const Onnx__NodeProto *n, int *layer)
{
    dn_status s = layer_input(im, n, 0, layer);
    if (!s) s = make_tail(im, n, *layer);
    return s;
}

/* Parameter k of the last layer from `data` (numel floats), its shape checked. */
static dn_status set_param(importer *im, const Onnx__NodeProto *n, int k, const float *data, int64_t numel)
{
    const dn_layer *l = &im->m->layers[im->m->n_layers - 1];
    dn_tensor *t = &im->m->tensors[l->first_tensor + k].t;
    if (dn_tensor_numel(t) != numel)
        return node_error(im, n, "parameter %s has %lld values, the layer needs %lld", im->m->tensors[l->first_tensor + k].name,
                          (long long)numel, (long long)dn_tensor_numel(t));
    memcpy(t->data, data, (size_t)numel * sizeof(float));
    return DN_OK;
}

/* The output of node n is the last layer's. */
static dn_status out_is_tail(importer *im, const Onnx__NodeProto *n)
{
    if (n->n_output < 1) return node_error(im, n, "has no output");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k] && *n->output[k])
            return node_error(im, n, "output %zu is used (only the first output of a node is supported)", k);
    return add_value(im, n->output[0], im->m->n_layers - 1, NULL);
}

static int tail_ndim(const dn_model *m)
{
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(m, &nd, shape);
    return nd;
}

/* ------------------------------------------------------------------ one importer per op */

/* Whether a node or the graph output reads `name`. */
static bool is_read(const importer *im, const char *name)
{
    for (size_t i = 0; i < im->g->n_node; i++)
        for (size_t k = 0; k < im->g->node[i]->n_input; k++)
            if (im->g->node[i]->input[k] && !strcmp(im->g->node[i]->input[k], name)) return true;
    for (size_t i = 0; i < im->g->n_output; i++)
        if (im->g->output[i]->name && !strcmp(im->g->output[i]->name, name)) return true;
    return false;
}

/* The single node that reads `name`, or NULL (none, or several). */
static const Onnx__NodeProto *only_reader(const importer *im, const char *name, size_t *index)
{
    const Onnx__NodeProto *found = NULL;
    for (size_t i = 0; i < im->g->n_node; i++) {
        const Onnx__NodeProto *n = im->g->node[i];
        for (size_t k = 0; k < n->n_input; k++)
            if (n->input[k] && !strcmp(n->input[k], name)) {
                if (found) return NULL;
                found = n;
                *index = i;
            }
    }
    for (size_t i = 0; i < im->g->n_output; i++)
        if (im->g->output[i]->name && !strcmp(im->g->output[i]->name, name)) return NULL;
    return found;
}

/* dense from Gemm (y = alpha x B^T + beta C with transB=1, as torch's Linear; or alpha x B + beta C: alpha and
 * beta are folded into the weight and bias) and from MatMul followed by an Add of a bias */
/* Appends the dense layer of node n (and of the Add `add` that supplies its bias bd, when not NULL): the weight wd is
 * [units, in] (dendrite's and PyTorch's layout) when units_major, else ONNX's [in, units], transposed here. */
static dn_status add_dense(importer *im, const Onnx__NodeProto *n, const float *wd, bool units_major, const float *bd,
                           int64_t units, int64_t in, const Onnx__NodeProto *add, size_t add_index)
{
    dn_status s = dn_model_add_dense(im->m, units, DN_INIT_DEFAULT, bd != NULL);
    if (!s) s = cfg_printf(im, "\n[dense]\nunits = %lld\nbias = %d\n", (long long)units, bd != NULL);
    if (s) return s;
    if (units_major) s = set_param(im, n, 0, wd, units * in);
    else {
        float *t = dn_alloc((size_t)(units * in) * sizeof *t);
        if (!t) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < in; i++)
            for (int64_t u = 0; u < units; u++) t[u * in + i] = wd[i * units + u];
        s = set_param(im, n, 0, t, units * in);
        dn_free(t);
    }
    if (!s && bd) s = set_param(im, n, 1, bd, units);
    if (!s) s = out_is_tail(im, n);
    if (!s && add) {
        im->consumed[add_index] = true;
        s = out_is_tail(im, add);
    }
    return s;
}

static dn_status import_dense(importer *im, const Onnx__NodeProto *n, bool gemm)
{
    dn_status s = DN_OK;
    int layer = -1;
    if ((s = data_input(im, n, &layer))) return s;
    if (gemm) {
        /* broadcast: opset 6's flag for C's broadcasting, which later opsets always do */
        if ((s = only_attrs(im, n, (const char *[]){"alpha", "beta", "transA", "transB", "broadcast", NULL}))) return s;
        if (attr_int(n, "transA", 0) != 0)
            return node_error(im, n, "transA = 1 (the data input transposed, mixing samples) is not supported");
        if (!isfinite(attr_float(n, "alpha", 1)) || !isfinite(attr_float(n, "beta", 1)))
            return node_error(im, n, "alpha and beta must be finite");
    } else if ((s = only_attrs(im, n, (const char *[]){NULL}))) {
        return s;
    }
    const bool trans_b = gemm && attr_int(n, "transB", 0) != 0;
    const Onnx__TensorProto *w = const_input(im, n, 1, &s), *b = NULL;
    if (!w) return s;
    const Onnx__NodeProto *add = NULL;
    size_t add_index = 0;
    const float alpha = (float)attr_float(n, "alpha", 1), beta = (float)attr_float(n, "beta", 1);
    /* beta = 0: C does not count (and may be absent) */
    if (gemm && has_input(n, 2) && beta != 0 && !(b = const_input(im, n, 2, &s))) return s;
    if (!gemm && n->n_output == 1 && (add = only_reader(im, n->output[0], &add_index)) && add->op_type &&
        !strcmp(add->op_type, "Add") &&
        add->n_input == 2) {
        /* MatMul + Add: the bias is the Add's other input, when it is a constant */
        const value *v = find_value(im, add->input[0] && !strcmp(add->input[0], n->output[0]) ? add->input[1] : add->input[0]);
        b = v ? v->t : NULL;
        if (!b) add = NULL;
    }
    if (w->n_dims != 2) return node_error(im, n, "the weight must have 2 dimensions");
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(im->m, &nd, shape);
    const int64_t in = trans_b ? w->dims[1] : w->dims[0], units = trans_b ? w->dims[0] : w->dims[1];
    if (nd != 1 || shape[0] != in)
        return node_error(im, n, "the input is %s per sample, the weight wants [%lld]", dn_shape_str(nd, shape), (long long)in);
    /* the bias broadcasts over the rows: one value, or one per unit ([units] or [1, units]); a C with a row per
     * sample ([M, units]) depends on the batch */
    bool one_per_unit = b && tensor_numel(b) == units && (b->n_dims == 0 || b->dims[b->n_dims - 1] == units);
    for (size_t i = 0; one_per_unit && i + 1 < b->n_dims; i++) one_per_unit = b->dims[i] == 1;
    if (b && tensor_numel(b) != 1 && !one_per_unit)
        return node_error(im, n, "the bias (C) has shape %s; it must be one value or one per unit ([%lld] or [1, %lld])",
                          dn_shape_str((int)(b->n_dims < DN_MAX_DIMS ? b->n_dims : DN_MAX_DIMS), b->dims),
                          (long long)units, (long long)units);
    float *wd = NULL, *bd = NULL;
    if ((s = tensor_floats(im, n, w, &wd))) return s;
    if (b) {
        /* beta C, one value per unit */
        float *c = NULL;
        if ((s = tensor_floats(im, n, b, &c))) goto out;
        if (!(bd = dn_alloc((size_t)units * sizeof *bd))) {
            dn_free(c);
            s = DN_ERR_NOMEM;
            goto out;
        }
        for (int64_t u = 0; u < units; u++) bd[u] = beta * c[tensor_numel(b) == 1 ? 0 : u];
        dn_free(c);
    }
    if (alpha != 1)
        for (int64_t i = 0; i < units * in; i++) wd[i] *= alpha;
    s = add_dense(im, n, wd, trans_b, bd, units, in, add, add_index);
out:
    dn_free(wd);
    dn_free(bd);
    return s;
}

/* auto_pad (Conv, MaxPool, AveragePool) as explicit pads p[4] = {H begin, W begin, H end, W end}: NOTSET keeps the
 * `pads` attribute, VALID is no padding, SAME_UPPER and SAME_LOWER pad so that the output is ceil(in / stride),
 * the odd pixel of an odd total at the end (UPPER) or the start (LOWER).  Those need the input's H and W. */
static dn_status resolve_auto_pad(importer *im, const Onnx__NodeProto *n, const int64_t *k, const int64_t *st,
                                  const int64_t *d, int64_t *p)
{
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (!ap || !ap->has_s || (ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6))) return DN_OK;
    const bool valid = ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5);
    const bool upper = ap->s.len == 10 && !memcmp(ap->s.data, "SAME_UPPER", 10);
    const bool lower = ap->s.len == 10 && !memcmp(ap->s.data, "SAME_LOWER", 10);
    if (!valid && !upper && !lower)
        return node_error(im, n, "auto_pad '%.*s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", (int)ap->s.len,
                          (const char *)ap->s.data);
    if (attr(n, "pads")) return node_error(im, n, "auto_pad and pads are both given");
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(im->m, &nd, shape);
    if (nd != 3) return node_error(im, n, "auto_pad needs an image input [C, H, W], not %s", dn_shape_str(nd, shape));
    for (int a = 0; a < 2; a++) {
        if (valid || st[a] < 1 || st[a] > 4096 || d[a] < 1 || d[a] > 4096 || k[a] < 1 || k[a] > 4096) {
            p[a] = p[a + 2] = 0; /* VALID, or out of range (refused by the caller's range check) */
            continue;
        }
        /* out = ceil(in / stride); total = max(0, (out - 1) stride + (k - 1) dilation + 1 - in) */
        const int64_t in = shape[1 + a], out = (in + st[a] - 1) / st[a];
        int64_t total = (out - 1) * st[a] + (k[a] - 1) * d[a] + 1 - in;
        if (total < 0) total = 0;
        p[a] = upper ? total / 2 : total - total / 2;
        p[a + 2] = total - p[a];
    }
    return DN_OK;
}

/* ceil_mode = 1 (pooling) gives the floor mode's output when every window fits exactly: (in + pads - extent) is a
 * multiple of the stride along H and W.  Else it is refused (dendrite's pooling has no ceil mode). */
static dn_status check_ceil_mode(importer *im, const Onnx__NodeProto *n, const int64_t *k, const int64_t *st,
                                 const int64_t *p)
{
    if (attr_int(n, "ceil_mode", 0) == 0) return DN_OK;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(im->m, &nd, shape);
    for (int a = 0; a < 2; a++)
        if (k[a] < 1 || k[a] > 4096 || st[a] < 1 || st[a] > 4096 || p[a] < 0 || p[a] > 2048 || p[a + 2] < 0 ||
            p[a + 2] > 2048)
            return DN_OK; /* out of range: the caller refuses it */
    for (int a = 0; nd == 3 && a < 2; a++) {
        const int64_t span = shape[1 + a] + p[a] + p[a + 2] - k[a];
        if (st[a] < 1 || span < 0 || span % st[a]) nd = 0;
    }
    if (nd != 3)
        return node_error(im, n, "ceil_mode = 1 is supported only where it gives the output of floor mode (the windows "
                                 "fit the padded input exactly); dendrite's pooling rounds down");
    return DN_OK;
}

static dn_status import_conv(importer *im, const Onnx__NodeProto *n)
{
    dn_status s;
    int layer = -1;
    if ((s = data_input(im, n, &layer))) return s;
    if ((s = only_attrs(im, n, (const char *[]){"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL})))
        return s;
    const Onnx__TensorProto *w = const_input(im, n, 1, &s), *b = NULL;
    if (!w) return s;
    if (has_input(n, 2) && !(b = const_input(im, n, 2, &s))) return s;
    if (w->n_dims != 4) return node_error(im, n, "only 2-d convolutions (a 4-d weight) are supported");
    int64_t k[2], st[2], d[2], p[4];
    if (!attr_ints(n, "kernel_shape", 2, 0, k) || !attr_ints(n, "strides", 2, 1, st) || !attr_ints(n, "dilations", 2, 1, d) ||
        !attr_ints(n, "pads", 4, 0, p))
        return node_error(im, n, "kernel_shape, strides, dilations and pads must have 2, 2, 2 and 4 entries");
    if ((k[0] && k[0] != w->dims[2]) || (k[1] && k[1] != w->dims[3]))
        return node_error(im, n, "kernel_shape disagrees with the weight");
    if ((s = resolve_auto_pad(im, n, (const int64_t[]){w->dims[2], w->dims[3]}, st, d, p))) return s;
    if (st[0] != st[1] || d[0] != d[1] || p[0] != p[1] || p[0] != p[2] || p[0] != p[3])
        return node_error(im, n, "strides, dilations and pads must be the same along H and W and at both ends "
                                 "(got strides %lld,%lld dilations %lld,%lld pads %lld,%lld,%lld,%lld)",
                          (long long)st[0], (long long)st[1], (long long)d[0], (long long)d[1], (long long)p[0],
                          (long long)p[1], (long long)p[2], (long long)p[3]);
    const int64_t filters = w->dims[0], groups = attr_int(n, "group", 1);
    if (st[0] < 1 || st[0] > 4096 || d[0] < 1 || d[0] > 4096 || p[0] < 0 || p[0] > 1024 || groups < 1 ||
        groups > (1 << 20) || w->dims[2] < 1 || w->dims[2] > 4096 || w->dims[3] < 1 || w->dims[3] > 4096)
        return node_error(im, n, "stride, dilation, padding, groups or kernel out of range");
    if (b && tensor_numel(b) != filters) return node_error(im, n, "the bias has %lld values for %lld filters",
                                                           (long long)tensor_numel(b), (long long)filters);
    float *wd = NULL, *bd = NULL;
    if ((s = tensor_floats(im, n, w, &wd))) return s;
    if (b && (s = tensor_floats(im, n, b, &bd))) goto out;
    if ((s = dn_model_add_conv2d(im->m, filters, (int)w->dims[2], (int)w->dims[3], (int)st[0], (int)p[0], (int)d[0],
                                 (int)groups, DN_INIT_DEFAULT, b != NULL))) {
        dn_error_prefix("%s: node '%s' (Conv)", im->path, node_name(n));
        goto out;
    }
    if ((s = cfg_printf(im, "\n[convolutional]\nfilters = %lld\nsize = %lld\nsize_w = %lld\nstride = %lld\npad = %lld\n"
                            "dilation = %lld\ngroups = %lld\nbias = %d\n",
                        (long long)filters, (long long)w->dims[2], (long long)w->dims[3], (long long)st[0],
                        (long long)p[0], (long long)d[0], (long long)groups, b != NULL)))
        goto out;
    if (!(s = set_param(im, n, 0, wd, tensor_numel(w))) && b) s = set_param(im, n, 1, bd, filters);
    if (!s) s = out_is_tail(im, n);
out:
    dn_free(wd);
    dn_free(bd);
    return s;
}

/* kind 0 max, 1 avg, 2 min (Neg, MaxPool, Neg: `in` is the first Neg, `n` the MaxPool, `out` the second Neg) */
static dn_status import_pool_kind(importer *im, const Onnx__NodeProto *in, const Onnx__NodeProto *n,
                                  const Onnx__NodeProto *out, int kind);

static dn_status import_pool(importer *im, const Onnx__NodeProto *n, bool avg)
{
    return import_pool_kind(im, n, n, n, avg ? 1 : 0);
}

/* The only node reading `name` if it is of type op, not yet consumed, with one output. */
static const Onnx__NodeProto *sole_reader(importer *im, const char *name, const char *op, size_t *index)
{
    const Onnx__NodeProto *r = only_reader(im, name, index);
    return r && r->op_type && !strcmp(r->op_type, op) && !im->consumed[*index] && r->n_output == 1 ? r : NULL;
}

/* Neg: only as the start of min pooling, -MaxPool(-x) */
static dn_status import_neg(importer *im, const Onnx__NodeProto *n)
{
    size_t i1 = 0, i2 = 0;
    const Onnx__NodeProto *pool = n->n_output == 1 ? sole_reader(im, n->output[0], "MaxPool", &i1) : NULL;
    const Onnx__NodeProto *neg = pool ? sole_reader(im, pool->output[0], "Neg", &i2) : NULL;
    if (!neg || n->n_attribute || neg->n_attribute)
        return node_error(im, n, "Neg is read only as min pooling, Neg -> MaxPool -> Neg");
    dn_status s = import_pool_kind(im, n, pool, neg, 2);
    im->consumed[i1] = im->consumed[i2] = true;
    return s;
}

static dn_status import_pool_kind(importer *im, const Onnx__NodeProto *in, const Onnx__NodeProto *n,
                                  const Onnx__NodeProto *out, int kind)
{
    dn_status s;
    int layer = -1;
    const bool avg = kind == 1;
    if ((s = data_input(im, in, &layer))) return s;
    if ((s = only_attrs(im, n, (const char *[]){"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                                "kernel_shape", "pads", "storage_order", "strides", NULL})))
        return s;
    int64_t k[2], st[2], d[2], p[4];
    if (!attr(n, "kernel_shape") || !attr_ints(n, "kernel_shape", 2, 0, k) || !attr_ints(n, "strides", 2, 1, st) ||
        !attr_ints(n, "dilations", 2, 1, d) || !attr_ints(n, "pads", 4, 0, p))
        return node_error(im, n, "2-d pooling needs kernel_shape (2 entries), and strides, dilations, pads of 2, 2, 4");
    if ((s = resolve_auto_pad(im, n, k, st, d, p)) || (s = check_ceil_mode(im, n, k, st, p))) return s;
    if (k[0] != k[1] || st[0] != st[1] || p[0] != p[1] || p[0] != p[2] || p[0] != p[3] || d[0] != 1 || d[1] != 1)
        return node_error(im, n, "the window, stride and padding must be square and symmetric, without dilation (got "
                                 "kernel %lld,%lld strides %lld,%lld pads %lld,%lld,%lld,%lld dilations %lld,%lld)",
                          (long long)k[0], (long long)k[1], (long long)st[0], (long long)st[1], (long long)p[0],
                          (long long)p[1], (long long)p[2], (long long)p[3], (long long)d[0], (long long)d[1]);
    if (attr_int(n, "storage_order", 0) != 0) return node_error(im, n, "storage_order = 1 is not supported");
    if (avg && p[0] && attr_int(n, "count_include_pad", 0) != 1)
        return node_error(im, n, "padded average pooling must count the padding (count_include_pad = 1), as dendrite does");
    if (k[0] < 1 || k[0] > 4096 || st[0] < 1 || st[0] > 4096 || p[0] < 0 || p[0] > 2048)
        return node_error(im, n, "window, stride or padding out of range");
    static const char *const kinds[] = {"max", "avg", "min"};
    if ((s = dn_model_add_pool2d(im->m, kinds[kind], (int)k[0], (int)st[0], (int)p[0]))) {
        dn_error_prefix("%s: node '%s' (%s)", im->path, node_name(n), n->op_type);
        return s;
    }
    if ((s = cfg_printf(im, "\n[%spool]\nsize = %lld\nstride = %lld\npad = %lld\n", kinds[kind], (long long)k[0],
                        (long long)st[0], (long long)p[0])))
        return s;
    return out_is_tail(im, out);
}

static dn_status import_global_pool(importer *im, const Onnx__NodeProto *n, bool avg)
{
    dn_status s;
    int layer = -1;
    if ((s = data_input(im, n, &layer)) || (s = only_attrs(im, n, (const char *[]){NULL}))) return s;
    if ((s = dn_model_add_global_pool(im->m, avg ? "avg" : "max"))) {
        dn_error_prefix("%s: node '%s' (%s)", im->path, node_name(n), n->op_type);
        return s;
    }
    if ((s = cfg_printf(im, "\n[global_%spool]\n", avg ? "avg" : "max"))) return s;
    return out_is_tail(im, n);
}

static dn_status import_batchnorm(importer *im, const Onnx__NodeProto *n)
{
    dn_status s = DN_OK;
    int layer = -1;
    if ((s = data_input(im, n, &layer))) return s;
    if ((s = only_attrs(im, n, (const char *[]){"epsilon", "momentum", "training_mode", "spatial", "is_test", NULL})))
        return s;
    /* is_test (opset 6, where its default 0 means training) and training_mode (opset 14) say the same thing the
     * other way round */
    if (attr_int(n, "training_mode", 0) != 0 || attr_int(n, "is_test", im->opset < 7 ? 0 : 1) != 1)
        return node_error(im, n, "only the inference form is supported (training_mode 0, is_test 1)");
    if (attr_int(n, "spatial", 1) != 1) return node_error(im, n, "spatial = 0 is not supported");
    const Onnx__TensorProto *t[4];
    for (int k = 0; k < 4; k++)
        if (!(t[k] = const_input(im, n, (size_t)k + 1, &s))) return s;
    const double eps = attr_float(n, "epsilon", 1e-5), momentum = 1.0 - attr_float(n, "momentum", 0.9);
    if (!(eps > 0) || !(momentum >= 0 && momentum <= 1)) return node_error(im, n, "epsilon or momentum out of range");
    if ((s = dn_model_add_batchnorm(im->m, (float)momentum, (float)eps))) {
        dn_error_prefix("%s: node '%s' (BatchNormalization)", im->path, node_name(n));
        return s;
    }
    if ((s = cfg_printf(im, "\n[batchnorm]\nmomentum = %.9g\neps = %.9g\n", (double)(float)momentum, (double)(float)eps)))
        return s;
    const dn_layer *l = &im->m->layers[im->m->n_layers - 1];
    for (int k = 0; k < 4 && !s; k++) {
        float *d = NULL;
        if ((s = tensor_floats(im, n, t[k], &d))) break;
        const int64_t c = im->m->tensors[l->first_tensor].t.shape[0];
        if (tensor_numel(t[k]) != c)
            s = node_error(im, n, "input %d has %lld values for %lld channels", k + 1, (long long)tensor_numel(t[k]), (long long)c);
        else if (k < 2) s = set_param(im, n, k, d, c);
        else memcpy(im->m->buffers[l->first_buffer + k - 2].t.data, d, (size_t)c * sizeof *d);
        dn_free(d);
    }
    return s ? s : out_is_tail(im, n);
}

/* Flatten(axis=1), and Reshape to [N, -1] (torch's x.view(x.size(0), -1) with a constant shape) */
static dn_status import_flatten(importer *im, const Onnx__NodeProto *n, bool reshape)
{
    dn_status s = DN_OK;
    int layer = -1;
    if ((s = data_input(im, n, &layer))) return s;
    if (reshape) {
        if ((s = only_attrs(im, n, (const char *[]){"allowzero", NULL}))) return s;
        const Onnx__TensorProto *t = const_input(im, n, 1, &s);
        if (!t) return s;
        int64_t v[8];
        int count = 0;
        if ((s = tensor_ints(im, n, t, v, 8, &count))) return s;
        int nd;
        int64_t shape[DN_MAX_DIMS];
        dn_model_tail_shape(im->m, &nd, shape);
        const int64_t per = dn_shape_numel(nd, shape);
        if (count != 2 || (v[1] != -1 && v[1] != per) || (v[0] != 0 && v[0] != -1) ||
            (v[0] == 0 && attr_int(n, "allowzero", 0)))
            return node_error(im, n, "only a reshape to [N, -1] (one sample per row) is supported");
    } else {
        if ((s = only_attrs(im, n, (const char *[]){"axis", NULL}))) return s;
        /* a negative axis counts from the end of [N, sample...] */
        const int64_t axis = attr_int(n, "axis", 1), rank = tail_ndim(im->m) + 1;
        if (axis != 1 && axis != 1 - rank)
            return node_error(im, n, "only axis = 1 (or %lld) is supported: other axes move samples across the batch axis",
                              (long long)(1 - rank));
    }
    if ((s = dn_model_add_flatten(im->m)) || (s = cfg_printf(im, "\n[flatten]\n"))) return s;
    return out_is_tail(im, n);
}

/* An activation layer of `type` after layer `layer`; node n for messages. */
static dn_status add_activation_layer(importer *im, const Onnx__NodeProto *n, int layer, const char *type,
                                      const char *attrs)
{
    dn_status s;
    if ((s = make_tail(im, n, layer))) return s;
    if ((s = dn_model_add_activation(im->m, type, attrs))) {
        dn_error_prefix("%s: node '%s' (%s)", im->path, node_name(n), n->op_type);
        return s;
    }
    if ((s = cfg_printf(im, "\n[activation]\ntype = %s\n", type))) return s;
    /* attrs is "name=value ..." and becomes one line per attribute */
    for (const char *p = attrs; p && *p;) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq && (s = cfg_printf(im, "%.*s = %.*s\n", (int)(eq - p), p, (int)(len - (size_t)(eq - p) - 1), eq + 1)))
            return s;
        p += len;
    }
    return DN_OK;
}

static dn_status import_activation(importer *im, const Onnx__NodeProto *n, const char *type, const char *attrs)
{
    int layer = -1;
    dn_status s = layer_input(im, n, 0, &layer);
    if (!s) s = add_activation_layer(im, n, layer, type, attrs);
    return s ? s : out_is_tail(im, n);
}

static dn_status import_activation_node(importer *im, const Onnx__NodeProto *n)
{
    const char *op = n->op_type;
    char attrs[128] = "";
    dn_status s;
    if (!strcmp(op, "Relu") || !strcmp(op, "Sigmoid") || !strcmp(op, "Tanh")) {
        if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
        return import_activation(im, n, op[0] == 'R' ? "relu" : op[1] == 'i' ? "sigmoid" : "tanh", NULL);
    }
    if (!strcmp(op, "LeakyRelu") || !strcmp(op, "Elu")) {
        if ((s = only_attrs(im, n, (const char *[]){"alpha", NULL}))) return s;
        snprintf(attrs, sizeof attrs, "alpha=%.9g", attr_float(n, "alpha", op[0] == 'L' ? 0.01 : 1.0));
        return import_activation(im, n, op[0] == 'L' ? "leaky_relu" : "elu", attrs);
    }
    if (!strcmp(op, "Selu")) {
        if ((s = only_attrs(im, n, (const char *[]){"alpha", "gamma", NULL}))) return s;
        if (fabs(attr_float(n, "alpha", 1.67326319217681884765625) - 1.6732632423543772) > 1e-6 ||
            fabs(attr_float(n, "gamma", 1.05070102214813232421875) - 1.0507009873554805) > 1e-6)
            return node_error(im, n, "only the standard alpha and gamma are supported");
        return import_activation(im, n, "selu", NULL);
    }
    if (!strcmp(op, "Softplus")) {
        if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
        return import_activation(im, n, "softplus", NULL);
    }
    if (!strcmp(op, "HardSigmoid")) {
        if ((s = only_attrs(im, n, (const char *[]){"alpha", "beta", NULL}))) return s;
        snprintf(attrs, sizeof attrs, "slope=%.9g offset=%.9g", attr_float(n, "alpha", 0.2), attr_float(n, "beta", 0.5));
        return import_activation(im, n, "hard_sigmoid", attrs);
    }
    /* Softmax, LogSoftmax: before opset 13 the axis (default 1) flattened everything after it; both meanings agree
     * on [N, C] with axis 1 */
    if ((s = only_attrs(im, n, (const char *[]){"axis", NULL}))) return s;
    const int rank = tail_ndim(im->m) + 1;
    int64_t axis = attr_int(n, "axis", im->opset >= 13 ? -1 : 1);
    if (axis < -rank || axis >= rank) return node_error(im, n, "axis %lld is out of range", (long long)axis);
    if (axis < 0) axis += rank;
    if (im->opset < 13 && axis != rank - 1)
        return node_error(im, n, "before opset 13 only the last axis is supported (the file is opset %d)", im->opset);
    snprintf(attrs, sizeof attrs, "axis=%lld", (long long)axis);
    return import_activation(im, n, op[0] == 'S' ? "softmax" : "log_softmax", attrs);
}

/* PRelu(x, slope): prelu with one alpha, or one per channel ([C] for [N, C], [C, 1, 1] for [N, C, H, W], as
 * ONNX broadcasts from the right) */
static dn_status import_prelu(importer *im, const Onnx__NodeProto *n)
{
    dn_status s = DN_OK;
    if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
    const Onnx__TensorProto *t = const_input(im, n, 1, &s);
    if (!t) return s;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    int layer;
    if ((s = layer_input(im, n, 0, &layer))) return s;
    if (layer >= 0) {
        nd = im->m->layers[layer].out_ndim;
        memcpy(shape, im->m->layers[layer].out_shape, sizeof shape);
    } else {
        nd = im->m->in_ndim;
        memcpy(shape, im->m->in_shape, sizeof shape);
    }
    const int64_t numel = tensor_numel(t);
    bool per_channel = numel == shape[0] && numel > 1 && (int)t->n_dims == nd;
    for (size_t i = 1; per_channel && i < t->n_dims; i++) per_channel = t->dims[i] == 1;
    if (numel != 1 && !per_channel)
        return node_error(im, n, "the slope must be one value or one per channel ([C, 1, ...] for a sample %s)",
                          dn_shape_str(nd, shape));
    float *d = NULL;
    if ((s = tensor_floats(im, n, t, &d))) return s;
    char attrs[64];
    snprintf(attrs, sizeof attrs, "channels=%lld", (long long)numel);
    s = import_activation(im, n, "prelu", attrs);
    if (!s) s = set_param(im, n, 0, d, numel);
    dn_free(d);
    return s;
}

/* Clip(x, min, max) with both bounds constant: hard_tanh(min, max) (bounds are inputs since opset 11, attributes
 * before) */
static dn_status import_clip(importer *im, const Onnx__NodeProto *n)
{
    dn_status s = DN_OK;
    double bound[2];
    if (im->opset < 11) {
        if ((s = only_attrs(im, n, (const char *[]){"min", "max", NULL}))) return s;
        if (!attr(n, "min") || !attr(n, "max")) return node_error(im, n, "needs both min and max");
        bound[0] = attr_float(n, "min", 0);
        bound[1] = attr_float(n, "max", 0);
    } else {
        if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
        for (int k = 0; k < 2; k++) {
            if (!has_input(n, (size_t)k + 1)) return node_error(im, n, "needs both min and max");
            const Onnx__TensorProto *t = const_input(im, n, (size_t)k + 1, &s);
            if (!t) return s;
            float *d = NULL;
            if (tensor_numel(t) != 1) return node_error(im, n, "min and max must be single values");
            if ((s = tensor_floats(im, n, t, &d))) return s;
            bound[k] = d[0];
            dn_free(d);
        }
    }
    if (!(bound[0] <= bound[1]) || !isfinite(bound[0]) || !isfinite(bound[1]))
        return node_error(im, n, "min and max must be finite with min <= max");
    char attrs[96];
    snprintf(attrs, sizeof attrs, "min=%.9g max=%.9g", bound[0], bound[1]);
    return import_activation(im, n, "hard_tanh", attrs);
}

/* ------------------------------------------------------------------ activations composed of several nodes */

/* The activations that ONNX (at the opsets read) has no op for arrive as small graphs of elementwise nodes: those
 * dendrite's own export writes (docs/onnx.md) and those torch.onnx.export writes for nn.GELU, nn.SiLU and nn.Mish.
 * A pattern is tried from the first node that reads a layer's output x; when it matches, its nodes become one
 * activation layer and are marked consumed.  Every intermediate value must be read by the pattern alone. */
typedef struct pattern {
    importer *im;
    const char *x;      /* the layer output the pattern starts from */
    size_t self;        /* the node being imported (already marked consumed) */
    size_t used[16];    /* node indices matched so far */
    int n_used;
} pattern;

/* A scalar constant's value, if `name` is one. */
static bool scalar_value(const importer *im, const char *name, double *v)
{
    const value *c = name ? find_value(im, name) : NULL;
    if (!c || !c->t || tensor_numel(c->t) != 1 || !c->t->has_data_type ||
        c->t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return false;
    if (c->t->has_raw_data && c->t->raw_data.len == 4) {
        const uint8_t *p = c->t->raw_data.data;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        *v = f;
        return true;
    }
    if (!c->t->has_raw_data && c->t->n_float_data == 1) {
        *v = c->t->float_data[0];
        return true;
    }
    return false;
}

/* The node of type op (not yet consumed or matched) that reads `in` and, for a binary op, whose other input is
 * `other` (a value name) or, when other is NULL, a scalar constant put in *c.  NULL when there is none. */
static const Onnx__NodeProto *pat_next(pattern *pt, const char *in, const char *op, const char *other, double *c)
{
    const importer *im = pt->im;
    for (size_t i = pt->self; i < im->g->n_node && i <= pt->self + PATTERN_WINDOW && pt->n_used < 16; i++) {
        const Onnx__NodeProto *n = im->g->node[i];
        bool taken = im->consumed[i] && i != pt->self;
        for (int k = 0; k < pt->n_used; k++) taken |= pt->used[k] == i;
        if (taken || !n->op_type || strcmp(n->op_type, op) || n->n_output != 1 || n->n_attribute) continue;
        bool ok = false;
        if (n->n_input == 1) ok = !other && !c && n->input[0] && !strcmp(n->input[0], in);
        else if (n->n_input == 2 && n->input[0] && n->input[1]) {
            for (int k = 0; k < 2 && !ok; k++) {
                /* Div and Greater are not commutative: the data comes first */
                if (k == 1 && (!strcmp(op, "Div") || !strcmp(op, "Greater"))) break;
                const char *a = n->input[k], *b = n->input[1 - k];
                ok = !strcmp(a, in) && (other ? !strcmp(b, other) : c && scalar_value(im, b, c));
            }
        }
        if (ok) {
            pt->used[pt->n_used++] = i;
            return n;
        }
    }
    return NULL;
}

/* Where(cond, a, b), not yet taken */
static const Onnx__NodeProto *pat_where(pattern *pt, const char *cond, const char *a, const char *b)
{
    const importer *im = pt->im;
    for (size_t i = pt->self; i < im->g->n_node && i <= pt->self + PATTERN_WINDOW && pt->n_used < 16; i++) {
        const Onnx__NodeProto *n = im->g->node[i];
        bool taken = im->consumed[i] && i != pt->self;
        for (int k = 0; k < pt->n_used; k++) taken |= pt->used[k] == i;
        if (taken || !n->op_type || strcmp(n->op_type, "Where") || n->n_input != 3 || n->n_output != 1) continue;
        if (n->input[0] && n->input[1] && n->input[2] && !strcmp(n->input[0], cond) && !strcmp(n->input[1], a) &&
            !strcmp(n->input[2], b)) {
            pt->used[pt->n_used++] = i;
            return n;
        }
    }
    return NULL;
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)); }

/* The values that the matched nodes compute, except the last, are read only by the matched nodes. */
static bool pat_closed(const pattern *pt)
{
    const importer *im = pt->im;
    for (int k = 0; k + 1 < pt->n_used; k++) {
        const char *v = im->g->node[pt->used[k]]->output[0];
        for (size_t i = 0; i < im->g->n_node; i++) {
            bool inside = false;
            for (int j = 0; j < pt->n_used; j++) inside |= pt->used[j] == i;
            for (size_t q = 0; !inside && q < im->g->node[i]->n_input; q++)
                if (im->g->node[i]->input[q] && !strcmp(im->g->node[i]->input[q], v)) return false;
        }
        for (size_t i = 0; i < im->g->n_output; i++)
            if (im->g->output[i]->name && !strcmp(im->g->output[i]->name, v)) return false;
    }
    return true;
}

#define OUT(n) ((n)->output[0])

/* Tries each pattern from x; *type is the activation matched ("" for none), attrs its attributes, *param swish's
 * beta. */
static void match_activation(pattern *pt, char *type, char *attrs, size_t attrs_size, double *param)
{
    const char *x = pt->x;
    const Onnx__NodeProto *a, *b, *c, *d, *e, *f, *g, *h, *i;
    (void)e;
    (void)i;
    double k1 = 0, k2 = 0, k3 = 0, k4 = 0;
    type[0] = attrs[0] = '\0';
#define TRY(cond, t, ...)                                                                                   \
    do {                                                                                                    \
        if ((cond) && pat_closed(pt)) {                                                                     \
            snprintf(type, 32, "%s", t);                                                                    \
            snprintf(attrs, attrs_size, __VA_ARGS__);                                                       \
            return;                                                                                         \
        }                                                                                                   \
        pt->n_used = 0;                                                                                     \
    } while (0)
    /* gelu, exact: x * (erf(x / sqrt 2) + 1) * 0.5, x / sqrt 2 as Div (PyTorch) or Mul by 1/sqrt 2 (dendrite) */
    TRY(((a = pat_next(pt, x, "Div", NULL, &k1)) && near(k1, 1.4142135623730951)) &&
            (b = pat_next(pt, OUT(a), "Erf", NULL, NULL)) && (c = pat_next(pt, OUT(b), "Add", NULL, &k2)) && near(k2, 1) &&
            (d = pat_next(pt, OUT(c), "Mul", x, NULL)) && (e = pat_next(pt, OUT(d), "Mul", NULL, &k3)) && near(k3, 0.5),
        "gelu", "%s", "");
    TRY(((a = pat_next(pt, x, "Mul", NULL, &k1)) && near(k1, 0.7071067811865476)) &&
            (b = pat_next(pt, OUT(a), "Erf", NULL, NULL)) && (c = pat_next(pt, OUT(b), "Add", NULL, &k2)) && near(k2, 1) &&
            (d = pat_next(pt, OUT(c), "Mul", x, NULL)) && (e = pat_next(pt, OUT(d), "Mul", NULL, &k3)) && near(k3, 0.5),
        "gelu", "%s", "");
    /* gelu, tanh form (dendrite's export): x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) 0.5 */
    TRY((a = pat_next(pt, x, "Mul", x, NULL)) && (b = pat_next(pt, OUT(a), "Mul", x, NULL)) &&
            (c = pat_next(pt, OUT(b), "Mul", NULL, &k1)) && near(k1, 0.044715) && (d = pat_next(pt, x, "Add", OUT(c), NULL)) &&
            (e = pat_next(pt, OUT(d), "Mul", NULL, &k2)) && near(k2, 0.7978845608028654) &&
            (f = pat_next(pt, OUT(e), "Tanh", NULL, NULL)) && (g = pat_next(pt, OUT(f), "Add", NULL, &k3)) && near(k3, 1) &&
            (h = pat_next(pt, OUT(g), "Mul", x, NULL)) && (i = pat_next(pt, OUT(h), "Mul", NULL, &k4)) && near(k4, 0.5),
        "gelu", "approximate=1");
    /* softplus with beta and threshold (dendrite): Where(beta x > threshold, x, softplus(beta x) / beta) */
    if ((a = pat_next(pt, x, "Mul", NULL, &k1)) && k1 > 0 && isfinite(k1) &&
        (b = pat_next(pt, OUT(a), "Softplus", NULL, NULL)) && (c = pat_next(pt, OUT(b), "Div", NULL, &k2)) &&
        near(k2, k1) && (d = pat_next(pt, OUT(a), "Greater", NULL, &k3)) && isfinite(k3) &&
        (e = pat_where(pt, OUT(d), x, OUT(c))) && pat_closed(pt)) {
        snprintf(type, 32, "softplus");
        snprintf(attrs, attrs_size, "beta=%.9g threshold=%.9g", k1, k3);
        return;
    }
    pt->n_used = 0;
    /* mish: x tanh(softplus(x)) */
    TRY((a = pat_next(pt, x, "Softplus", NULL, NULL)) && (b = pat_next(pt, OUT(a), "Tanh", NULL, NULL)) &&
            (c = pat_next(pt, OUT(b), "Mul", x, NULL)),
        "mish", "%s", "");
    /* swish: x sigmoid(beta x) (dendrite; beta is learned, so it goes to the parameter) and x sigmoid(x) (PyTorch's
     * SiLU) */
    *param = 1;
    if ((a = pat_next(pt, x, "Mul", NULL, &k1)) && isfinite(k1) && (b = pat_next(pt, OUT(a), "Sigmoid", NULL, NULL)) &&
        (c = pat_next(pt, x, "Mul", OUT(b), NULL)) && pat_closed(pt)) {
        snprintf(type, 32, "swish");
        *param = k1;
        return;
    }
    pt->n_used = 0;
    TRY((a = pat_next(pt, x, "Sigmoid", NULL, NULL)) && (b = pat_next(pt, x, "Mul", OUT(a), NULL)), "swish", "%s", "");
#undef TRY
}

/* A node that may start a composed activation (Mul, Div, Sigmoid, Softplus; node `index`): true in *matched when
 * a pattern including it was imported. */
static dn_status import_pattern(importer *im, const Onnx__NodeProto *n, size_t index, bool *matched)
{
    *matched = false;
    for (size_t k = 0; k < n->n_input && k < 2; k++) {
        const value *v = n->input[k] ? find_value(im, n->input[k]) : NULL;
        if (!v || v->t) continue;
        pattern pt = {.im = im, .x = n->input[k], .self = index};
        char type[32], attrs[64];
        double param = 1;
        const int layer = v->layer;
        match_activation(&pt, type, attrs, sizeof attrs, &param);
        bool has_n = false;
        for (int j = 0; j < pt.n_used; j++) has_n |= pt.used[j] == index;
        if (!type[0] || !has_n) continue;
        const Onnx__NodeProto *last = im->g->node[pt.used[pt.n_used - 1]];
        dn_status s = add_activation_layer(im, n, layer, type, attrs);
        if (!s && !strcmp(type, "swish")) {
            const float beta = (float)param;
            s = set_param(im, n, 0, &beta, 1);
        }
        for (int j = 0; j < pt.n_used; j++) im->consumed[pt.used[j]] = true;
        if (!s) s = out_is_tail(im, last);
        *matched = true;
        return s;
    }
    return DN_OK;
}

/* Add of two layer outputs of the same shape: a residual [shortcut] */
static dn_status import_add(importer *im, const Onnx__NodeProto *n)
{
    dn_status s;
    int a, b;
    if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
    if (n->n_input != 2) return node_error(im, n, "needs 2 inputs");
    if ((s = layer_input(im, n, 0, &a)) || (s = layer_input(im, n, 1, &b))) return s;
    if (b == im->m->n_layers - 1) {
        int t = a;
        a = b;
        b = t;
    }
    if (b < 0) return node_error(im, n, "adds the model input (a shortcut reads a layer's output)");
    if ((s = make_tail(im, n, a))) return s;
    if ((s = dn_model_add_shortcut(im->m, b))) {
        dn_error_prefix("%s: node '%s' (Add)", im->path, node_name(n));
        return s;
    }
    if ((s = cfg_printf(im, "\n[shortcut]\nfrom = %d\n", b))) return s;
    return out_is_tail(im, n);
}

static dn_status import_concat(importer *im, const Onnx__NodeProto *n)
{
    dn_status s;
    if ((s = only_attrs(im, n, (const char *[]){"axis", NULL}))) return s;
    if (n->n_input < 1 || n->n_input > DN_MAX_ROUTE) return node_error(im, n, "joins 1 to %d inputs", DN_MAX_ROUTE);
    int layers[DN_MAX_ROUTE];
    for (size_t k = 0; k < n->n_input; k++) {
        if ((s = layer_input(im, n, k, &layers[k]))) return s;
        if (layers[k] < 0) return node_error(im, n, "joins the model input (a route reads layers' outputs)");
    }
    const int rank = im->m->layers[layers[0]].out_ndim + 1;
    const int64_t axis = attr_int(n, "axis", im->opset < 4 ? 1 : 0); /* optional, default 1, before opset 4 */
    if (axis != 1 && axis != 1 - rank)
        return node_error(im, n, "only axis = 1 (channels) is supported");
    if ((s = dn_model_add_route(im->m, (int)n->n_input, layers))) {
        dn_error_prefix("%s: node '%s' (Concat)", im->path, node_name(n));
        return s;
    }
    if ((s = cfg_printf(im, "\n[route]\nlayers = "))) return s;
    for (size_t k = 0; k < n->n_input; k++)
        if ((s = cfg_printf(im, "%s%d", k ? ", " : "", layers[k]))) return s;
    if ((s = cfg_printf(im, "\n"))) return s;
    return out_is_tail(im, n);
}

/* Identity, and Dropout (the identity at inference): the output is another name for the input */
static dn_status import_alias(importer *im, const Onnx__NodeProto *n)
{
    const value *v = has_input(n, 0) ? find_value(im, n->input[0]) : NULL;
    if (!v) return node_error(im, n, "input '%s' is not computed by an earlier node", has_input(n, 0) ? n->input[0] : "");
    if (!strcmp(n->op_type, "Dropout") && (has_input(n, 2) || (im->opset < 7 && attr_int(n, "is_test", 0) != 1)))
        return node_error(im, n, "only the inference form is supported (no training_mode input; is_test = 1 before "
                                 "opset 7)");
    if (n->n_output < 1) return node_error(im, n, "has no output");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k] && *n->output[k] && is_read(im, n->output[k]))
            return node_error(im, n, "its mask output is used (not supported)");
    value copy = *v;
    return add_value(im, n->output[0], copy.layer, copy.t);
}

static dn_status import_constant(importer *im, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = attr(n, "value");
    if (!a || !a->t || n->n_attribute != 1 || n->n_output != 1)
        return node_error(im, n, "only a Constant with a tensor 'value' is supported");
    return add_value(im, n->output[0], -1, a->t);
}

/* ------------------------------------------------------------------ sequence layers: embedding, RNN, LSTM, GRU */

/* Around the recurrent ops a value may hold a layer's output in another layout than dendrite's; value.form says
 * which.  Only the functions of this section read values whose form is not FORM_PLAIN, and import_seq_node refuses
 * any other node that reads one, so the feed-forward importers above never see them. */
enum {
    FORM_PLAIN = 0, /* dendrite's layout ([N, T, F] for a sequence), or a constant */
    FORM_TIME,      /* layer `layer`'s sequence, time-major [T, N, F] (ONNX's X) */
    FORM_Y,         /* Y [T, D, N, H] of recurrent layer `layer` */
    FORM_YT,        /* Y transposed to [T, N, D, H] */
    FORM_YH,        /* Y_h [D, N, H] of recurrent layer `layer` (its last step: return_sequences = 0) */
    FORM_YHT,       /* Y_h transposed to [N, D, H] */
    FORM_SHAPE,     /* computed from shapes and constants only (torch's zero initial states: Shape ... ConstantOfShape) */
    FORM_IDS,       /* token ids: the model input as int64 (or Cast to it) */
    FORM_WT,        /* constant `t` (a 2-d weight) transposed */
    FORM_YH_ALL,    /* every stacked layer's Y_h joined [layers*D, N, H] (torch's h_n of a stacked layer) */
};

static const char *form_name(int form)
{
    static const char *const names[] = {"", "a time-major sequence", "a recurrent layer's Y", "a recurrent layer's Y",
                                        "a recurrent layer's Y_h", "a recurrent layer's Y_h",
                                        "a shape computation", "token ids", "a transposed weight",
                                        "the stacked layers' Y_h"};
    return form >= 0 && form <= FORM_YH_ALL ? names[form] : "?";
}

#define DEFAULT_MAX_STEPS 1024 /* the length a model with a free T is configured with, without dendrite's metadata */

static dn_status add_form(importer *im, const char *name, int layer, const Onnx__TensorProto *t, int form)
{
    dn_status s = add_value(im, name, layer, t);
    if (!s && name && *name) im->vals[im->n_vals - 1].form = form;
    return s;
}

static bool op_is(const Onnx__NodeProto *n, const char *op) { return n && n->op_type && !strcmp(n->op_type, op); }

/* The node that computes `name` (any output), or NULL. */
static const Onnx__NodeProto *producer(const importer *im, const char *name)
{
    for (size_t i = 0; name && *name && i < im->g->n_node; i++)
        for (size_t k = 0; k < im->g->node[i]->n_output; k++)
            if (im->g->node[i]->output[k] && !strcmp(im->g->node[i]->output[k], name)) return im->g->node[i];
    return NULL;
}

/* A constant named `name`: an initializer or a Constant node read so far, or a Constant node further on (torch
 * writes a pattern's constants between its nodes, and a pattern is read from its first node). */
static const Onnx__TensorProto *const_any(const importer *im, const char *name)
{
    if (!name || !*name) return NULL;
    const value *v = find_value(im, name);
    if (v) return v->form == FORM_PLAIN ? v->t : NULL;
    const Onnx__NodeProto *p = producer(im, name);
    const Onnx__AttributeProto *a = op_is(p, "Constant") ? attr(p, "value") : NULL;
    return a ? a->t : NULL;
}

/* The int64 values of constant `name` (at most max), or false. */
static bool const_ints(const importer *im, const Onnx__NodeProto *n, const char *name, int64_t *out, int max, int *count)
{
    const Onnx__TensorProto *t = const_any(im, name);
    if (!t || tensor_ints(im, n, t, out, max, count)) {
        dn_error_clear();
        return false;
    }
    return true;
}

static bool ints_are(const int64_t *v, int n, int want_n, const int64_t *want)
{
    if (n != want_n) return false;
    for (int i = 0; i < n; i++)
        if (v[i] != want[i]) return false;
    return true;
}

/* Whether a tensor holds only zeros (of any type: every byte 0, or every float 0). */
static bool all_zero(const Onnx__TensorProto *t)
{
    if (t->has_raw_data) {
        for (size_t i = 0; i < t->raw_data.len; i++)
            if (t->raw_data.data[i]) return false;
        return true;
    }
    for (size_t i = 0; i < t->n_float_data; i++)
        if (t->float_data[i] != 0) return false;
    for (size_t i = 0; i < t->n_int64_data; i++)
        if (t->int64_data[i]) return false;
    for (size_t i = 0; i < t->n_int32_data; i++)
        if (t->int32_data[i]) return false;
    return true;
}

/* Whether value `name` is all zeros: a zero constant, or ConstantOfShape(value 0) through slices, reshapes and
 * expansions of it (what torch.onnx.export writes for a recurrent layer's default initial state). */
static bool zero_state(const importer *im, const char *name, int depth)
{
    if (depth > 8 || !name || !*name) return false;
    const Onnx__TensorProto *t = const_any(im, name);
    if (t) return all_zero(t);
    const Onnx__NodeProto *p = producer(im, name);
    if (!p) return false;
    if (op_is(p, "ConstantOfShape")) {
        const Onnx__AttributeProto *a = attr(p, "value");
        return !a || (a->t && all_zero(a->t));
    }
    if (op_is(p, "Slice") || op_is(p, "Expand") || op_is(p, "Reshape") || op_is(p, "Squeeze") || op_is(p, "Unsqueeze") ||
        op_is(p, "Identity") || op_is(p, "Gather") || op_is(p, "Tile") || op_is(p, "Cast"))
        return p->n_input > 0 && zero_state(im, p->input[0], depth + 1);
    return false;
}

/* Whether v is a sequence in dendrite's layout: the model input [N, T, F] or a layer's [N, T, F] output. */
static bool is_seq(const importer *im, const value *v)
{
    if (!v || v->t || v->form != FORM_PLAIN) return false;
    if (v->layer < 0) return im->m->in_ndim == 2;
    return im->m->variable_length && im->m->layers[v->layer].out_ndim == 2;
}

/* The model's sample shape for a sequence input (import_graph's read_input hands these over): int64 ids [N, T], or
 * float ids [N, T] cast to int64 (dendrite's export); float [N, T, F], or [T, N, F] when a recurrent node reads it
 * as its X (a time-major model, batch_first = False: dendrite's model then takes [N, T, F]).  T may be free: the
 * model is then configured with the length in dendrite's metadata (net.input), else DEFAULT_MAX_STEPS. */
static dn_status read_seq_input(importer *im, const Onnx__ValueInfoProto *in, int *ndim, int64_t *shape, bool *handled)
{
    const Onnx__TensorShapeProto *sh = in->type->tensor_type->shape;
    const int elem = in->type->tensor_type->elem_type;
    bool cast = false, time_major = false;
    for (size_t i = 0; i < im->g->n_node; i++) {
        const Onnx__NodeProto *n = im->g->node[i];
        if (n->n_input < 1 || !n->input[0] || strcmp(n->input[0], in->name)) continue;
        cast |= op_is(n, "Cast") && attr_int(n, "to", 0) == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        time_major |= op_is(n, "RNN") || op_is(n, "LSTM") || op_is(n, "GRU");
    }
    const bool ids = sh->n_dim == 2 && (elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
                                        (elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && cast));
    const int t_axis = time_major ? 0 : 1;
    /* a batch-first [N, C, L] of fixed sizes is read by read_input as any other sample shape */
    const bool free_t = sh->n_dim >= 2 && sh->dim[t_axis]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    *handled = ids || (sh->n_dim == 3 && elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && (time_major || free_t));
    if (!*handled) return DN_OK;
    const Onnx__TensorShapeProto__Dimension *dt = sh->dim[t_axis];
    int64_t steps = DEFAULT_MAX_STEPS;
    if (dt->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
        steps = dt->dim_value;
    } else if (im->meta_input) {
        long long v = strtoll(im->meta_input, NULL, 10);
        if (v >= 1 && v <= (1 << 24)) steps = v;
    }
    if (steps < 1 || steps > (1 << 24))
        return dn_error(DN_ERR_FORMAT, "%s: input '%s': sequence length %lld out of range", im->path, in->name, (long long)steps);
    shape[0] = steps;
    *ndim = 1;
    if (!ids) {
        const Onnx__TensorShapeProto__Dimension *df = sh->dim[2];
        if (df->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || df->dim_value < 1 ||
            df->dim_value > (1 << 24))
            return dn_error(DN_ERR_FORMAT, "%s: input '%s': the feature size (dimension 2) must be fixed", im->path, in->name);
        shape[(*ndim)++] = df->dim_value;
    }
    return add_form(im, in->name, -1, NULL, ids && elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? FORM_IDS
                                            : time_major                                    ? FORM_TIME
                                                                                            : FORM_PLAIN);
}

/* Every output of n is a shape computation. */
static dn_status shape_out(importer *im, const Onnx__NodeProto *n)
{
    dn_status s = DN_OK;
    for (size_t k = 0; k < n->n_output && !s; k++) s = add_form(im, n->output[k], -1, NULL, FORM_SHAPE);
    return s;
}

/* Gather: an embedding (rows of a constant [vocab, size] by token ids), or the last step of a sequence. */
static dn_status import_seq_gather(importer *im, const Onnx__NodeProto *n, size_t index);
/* The last step of recurrent layer `layer`'s every-step output is its final state (one direction): the layer
 * becomes return_sequences = 0. */
static dn_status last_step(importer *im, const Onnx__NodeProto *n, size_t index, int layer)
{
    dn_layer *l = layer >= 0 ? &im->m->layers[layer] : NULL;
    if (!l || l->kind != DN_LAYER_RECURRENT)
        return node_error(im, n, "the last step of a sequence is read only from a recurrent layer's output (which becomes "
                                 "dendrite's return_sequences = 0)");
    if (l->bidirectional)
        return node_error(im, n, "the last step of a bidirectional layer's output holds the reverse direction's first "
                                 "step, not its final state (dendrite's return_sequences = 0 gives the final states, ONNX's "
                                 "Y_h): not supported");
    size_t k = 0;
    if (layer != im->m->n_layers - 1 || !l->return_sequences || only_reader(im, n->input[0], &k) != n || k != index)
        return node_error(im, n, "the last step is read only right after the recurrent layer, as its only reader");
    l->return_sequences = false;
    l->out_ndim = 1;
    l->out_shape[0] = l->units;
    /* its cfg section is the last one written */
    char *p = NULL;
    for (char *q = im->cfg; (q = strstr(q, "return_sequences = 1")) != NULL; q++) p = q;
    if (!p) return node_error(im, n, "internal: the recurrent layer's cfg section is missing");
    p[strlen("return_sequences = ")] = '0';
    return add_value(im, n->output[0], layer, NULL);
}

static dn_status import_seq_gather(importer *im, const Onnx__NodeProto *n, size_t index)
{
    dn_status s;
    if ((s = only_attrs(im, n, (const char *[]){"axis", NULL}))) return s;
    if (n->n_input != 2 || n->n_output != 1) return node_error(im, n, "needs 2 inputs and 1 output");
    const value *data = find_value(im, n->input[0]), *idx = find_value(im, n->input[1]);
    if (!data || !idx) return node_error(im, n, "an input is not computed by an earlier node");
    const int64_t axis = attr_int(n, "axis", 0);
    if (data->t && data->form == FORM_PLAIN && idx->form == FORM_IDS) {
        /* embedding: weight [vocab, size], rows by the ids */
        const Onnx__TensorProto *w = data->t;
        if (axis != 0 || w->n_dims != 2) return node_error(im, n, "an embedding gathers rows (axis 0) of a 2-d weight");
        if (im->m->n_layers != 0 || idx->layer != -1)
            return node_error(im, n, "an embedding must be the first layer, reading the model input's token ids");
        float *wd = NULL;
        if ((s = tensor_floats(im, n, w, &wd))) return s;
        if ((s = dn_model_add_embedding(im->m, w->dims[0], w->dims[1]))) dn_error_prefix("%s: node '%s' (Gather)", im->path, node_name(n));
        if (!s) s = cfg_printf(im, "\n[embedding]\nvocab = %lld\nsize = %lld\n", (long long)w->dims[0], (long long)w->dims[1]);
        if (!s) s = set_param(im, n, 0, wd, tensor_numel(w));
        dn_free(wd);
        return s ? s : out_is_tail(im, n);
    }
    int64_t k[2];
    int count = 0;
    const Onnx__TensorProto *it = idx->form == FORM_PLAIN ? idx->t : NULL;
    const bool last = it && it->n_dims == 0 && !tensor_ints(im, n, it, k, 1, &count) && count == 1 && k[0] == -1;
    dn_error_clear();
    if (last && ((data->form == FORM_PLAIN && is_seq(im, data) && (axis == 1 || axis == -2)) ||
                 (data->form == FORM_TIME && (axis == 0 || axis == -3))))
        return last_step(im, n, index, data->layer);
    if (data->form == FORM_YH_ALL && (axis == 0 || axis == -3) && it && it->n_dims == 0 &&
        !tensor_ints(im, n, it, k, 1, &count) && !im->m->layers[data->layer].bidirectional &&
        (k[0] == -1 || k[0] == im->m->layers[data->layer].rnn_layers - 1))
        return add_value(im, n->output[0], data->layer, NULL); /* h_n[-1]: the top layer's final state */
    dn_error_clear();
    if (data->form == FORM_YH && (axis == 0 || axis == -3) && it && it->n_dims == 0 &&
        !tensor_ints(im, n, it, k, 1, &count) && (k[0] == 0 || k[0] == -1) && !im->m->layers[data->layer].bidirectional)
        return add_value(im, n->output[0], data->layer, NULL); /* h_n[-1] of one direction: the final state */
    dn_error_clear();
    return node_error(im, n, "Gather is read as an embedding (rows of a constant [vocab, size] by the model input's "
                             "token ids) or as the last step (index -1) of a one-direction recurrent layer's output, on the "
                             "time axis");
}

static dn_status import_seq_transpose(importer *im, const Onnx__NodeProto *n, const value *x)
{
    dn_status s;
    if ((s = only_attrs(im, n, (const char *[]){"perm", NULL}))) return s;
    const Onnx__AttributeProto *a = attr(n, "perm");
    const int np = a ? (int)a->n_ints : 0;
    const int64_t *p = a ? a->ints : NULL;
    if (n->n_output != 1) return node_error(im, n, "needs 1 output");
    if (np == 3 && ints_are(p, 3, 3, (int64_t[]){1, 0, 2})) {
        if (is_seq(im, x)) return add_form(im, n->output[0], x->layer, NULL, FORM_TIME);
        if (x->form == FORM_TIME) return add_form(im, n->output[0], x->layer, NULL, FORM_PLAIN);
        if (x->form == FORM_YH) return add_form(im, n->output[0], x->layer, NULL, FORM_YHT);
    }
    if (np == 4 && ints_are(p, 4, 4, (int64_t[]){0, 2, 1, 3}) && x->form == FORM_Y)
        return add_form(im, n->output[0], x->layer, NULL, FORM_YT);
    if (np == 2 && ints_are(p, 2, 2, (int64_t[]){1, 0}) && x->t && x->form == FORM_PLAIN && x->t->n_dims == 2)
        return add_form(im, n->output[0], -1, x->t, FORM_WT);
    return node_error(im, n, "Transpose is read between batch-first and time-major sequences (perm 1, 0, 2), on a "
                             "recurrent layer's Y (0, 2, 1, 3) or Y_h (1, 0, 2), and of a 2-d constant weight (1, 0)");
}

/* Squeeze and Reshape of a recurrent layer's Y or Y_h into a sequence [T, N, D*H] or the final states [N, D*H] */
static dn_status import_seq_reshape(importer *im, const Onnx__NodeProto *n, const value *x)
{
    const bool squeeze = op_is(n, "Squeeze");
    int64_t v[8];
    int count = 0;
    dn_status s = only_attrs(im, n, (const char *[]){squeeze ? "axes" : "allowzero", NULL});
    if (s) return s;
    bool ok = n->n_output == 1;
    if (squeeze && n->n_input < 2) {
        /* opset 11-12: axes as an attribute */
        const Onnx__AttributeProto *a = attr(n, "axes");
        ok = ok && a && a->n_ints <= 8;
        count = ok ? (int)a->n_ints : 0;
        if (ok) memcpy(v, a->ints, (size_t)count * sizeof *v);
    } else {
        ok = ok && n->n_input == 2 && const_ints(im, n, n->input[1], v, 8, &count);
    }
    const dn_layer *l = x->layer >= 0 ? &im->m->layers[x->layer] : NULL;
    const int64_t dirs = l && l->bidirectional ? 2 : 1, width = l ? dirs * l->units : 0;
    if (ok && l && squeeze && dirs == 1) {
        if (x->form == FORM_Y && ints_are(v, count, 1, (int64_t[]){1}))
            return add_form(im, n->output[0], x->layer, NULL, FORM_TIME);
        if (x->form == FORM_YH && ints_are(v, count, 1, (int64_t[]){0}))
            return add_value(im, n->output[0], x->layer, NULL);
    }
    if (ok && l && !squeeze && attr_int(n, "allowzero", 0) == 0) {
        if (x->form == FORM_YT && (ints_are(v, count, 3, (int64_t[]){0, 0, -1}) || ints_are(v, count, 3, (int64_t[]){0, 0, width})))
            return add_form(im, n->output[0], x->layer, NULL, FORM_TIME);
        if (x->form == FORM_YHT && (ints_are(v, count, 2, (int64_t[]){0, -1}) || ints_are(v, count, 2, (int64_t[]){0, width}) ||
                                    ints_are(v, count, 2, (int64_t[]){-1, width})))
            return add_value(im, n->output[0], x->layer, NULL);
        if (x->form == FORM_YH && dirs == 1 && ints_are(v, count, 2, (int64_t[]){-1, width}))
            return add_value(im, n->output[0], x->layer, NULL);
    }
    return node_error(im, n, "%s of %s is read only as ONNX's recurrent outputs are joined into dendrite's: Y by "
                             "Squeeze(axis 1) (one direction) or Transpose(0, 2, 1, 3) and Reshape(0, 0, -1); Y_h by "
                             "Squeeze(axis 0) (one direction) or Transpose(1, 0, 2) and Reshape(0, -1)",
                      n->op_type, form_name(x->form));
}

/* dense at every step of a sequence: MatMul(x [N, T, F], constant [F, units] or the transpose of [units, F]), then
 * an Add of a constant bias if that is the MatMul's only reader */
static dn_status import_seq_dense(importer *im, const Onnx__NodeProto *n, size_t index)
{
    dn_status s;
    int layer = -1;
    if ((s = only_attrs(im, n, (const char *[]){NULL}))) return s;
    const value *wv = n->n_input == 2 ? find_value(im, n->input[1]) : NULL;
    if (!wv || !wv->t || wv->t->n_dims != 2 || (wv->form != FORM_PLAIN && wv->form != FORM_WT))
        return node_error(im, n, "over a sequence, MatMul needs a constant 2-d weight");
    const bool wt = wv->form == FORM_WT; /* the weight is [units, F], dendrite's layout */
    const int64_t in = wt ? wv->t->dims[1] : wv->t->dims[0], units = wt ? wv->t->dims[0] : wv->t->dims[1];
    if ((s = data_input(im, n, &layer))) return s;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_model_tail_shape(im->m, &nd, shape);
    if (nd != 2 || shape[1] != in)
        return node_error(im, n, "the input is %s per sample, the weight wants [T, %lld]", dn_shape_str(nd, shape), (long long)in);
    size_t add_index = 0;
    const Onnx__NodeProto *add = n->n_output == 1 ? only_reader(im, n->output[0], &add_index) : NULL;
    const Onnx__TensorProto *b = NULL;
    if (op_is(add, "Add") && add->n_input == 2 && !im->consumed[add_index]) {
        const value *v = find_value(im, !strcmp(add->input[0], n->output[0]) ? add->input[1] : add->input[0]);
        b = v && v->form == FORM_PLAIN ? v->t : NULL;
        if (b && tensor_numel(b) != units) b = NULL;
    }
    if (!b) add = NULL;
    float *wd = NULL, *bd = NULL;
    if ((s = tensor_floats(im, n, wv->t, &wd))) return s;
    if (b && (s = tensor_floats(im, n, b, &bd))) goto out;
    s = add_dense(im, n, wd, wt, bd, units, in, add, add_index);
out:
    dn_free(wd);
    dn_free(bd);
    return s;
}

/* ONNX's gate blocks in dendrite's (PyTorch's) order: dendrite block perm[j] is ONNX block j (src/io/onnx_export.c
 * and docs/onnx.md: LSTM i, o, f, c <- i, f, g, o; GRU z, r, h <- r, z, n). */
static const int *gate_order(const char *op)
{
    static const int lstm[4] = {0, 3, 1, 2}, gru[3] = {1, 0, 2}, rnn[1] = {0};
    return !strcmp(op, "LSTM") ? lstm : !strcmp(op, "GRU") ? gru : rnn;
}

static void gates_from_onnx(float *dst, const float *src, int gates, const int *perm, int64_t hid, int64_t cols)
{
    for (int j = 0; j < gates; j++)
        memcpy(dst + (int64_t)perm[j] * hid * cols, src + (int64_t)j * hid * cols, (size_t)(hid * cols) * sizeof *dst);
}

typedef struct rnn_node {
    int64_t hidden, dirs;
    bool relu; /* RNN: Relu activations */
} rnn_node;

/* Whether attribute `name` (strings) is absent or lists `per` names per direction, each group equal to want[] */
static bool strings_are(const Onnx__NodeProto *n, const char *name, int dirs, int per, const char *const *want)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) return true;
    if (a->n_strings != (size_t)(dirs * per)) return false;
    for (int i = 0; i < dirs * per; i++) {
        const char *w = want[i % per];
        if (a->strings[i].len != strlen(w) || memcmp(a->strings[i].data, w, strlen(w))) return false;
    }
    return true;
}

/* The checks of one RNN / LSTM / GRU node (attributes and optional inputs), its settings into *r. */
static dn_status check_rnn_node(importer *im, const Onnx__NodeProto *n, rnn_node *r)
{
    dn_status s;
    const bool lstm = op_is(n, "LSTM"), gru = op_is(n, "GRU");
    if (n->n_input < 3 || !has_input(n, 1) || !has_input(n, 2)) return node_error(im, n, "needs inputs X, W and R");
    if ((s = only_attrs(im, n, (const char *[]){"activation_alpha", "activation_beta", "activations", "clip", "direction",
                                                "hidden_size", "layout", lstm ? "input_forget" : gru ? "linear_before_reset" : NULL,
                                                NULL})))
        return s;
    if (attr(n, "clip") || attr(n, "activation_alpha") || attr(n, "activation_beta"))
        return node_error(im, n, "clip, activation_alpha and activation_beta are not supported");
    r->hidden = attr_int(n, "hidden_size", 0);
    if (r->hidden < 1 || r->hidden > (1 << 16)) return node_error(im, n, "hidden_size must be 1 .. 65536");
    if (attr_int(n, "layout", 0) != 0)
        return node_error(im, n, "layout = 1 (batch-first X) is not supported: X must be [T, N, I] (layout 0)");
    const Onnx__AttributeProto *d = attr(n, "direction");
    r->dirs = 1;
    if (d && d->has_s && d->s.len == 13 && !memcmp(d->s.data, "bidirectional", 13)) r->dirs = 2;
    else if (d && !(d->has_s && d->s.len == 7 && !memcmp(d->s.data, "forward", 7)))
        return node_error(im, n, "direction must be forward or bidirectional (a reverse-only layer is not supported)");
    if (lstm && attr_int(n, "input_forget", 0) != 0) return node_error(im, n, "input_forget = 1 is not supported");
    if (gru && attr_int(n, "linear_before_reset", 0) != 1)
        return node_error(im, n, "linear_before_reset must be 1: dendrite's (PyTorch's) GRU applies the reset gate after "
                                 "the recurrent product and its bias");
    r->relu = false;
    if (lstm && !strings_are(n, "activations", (int)r->dirs, 3, (const char *[]){"Sigmoid", "Tanh", "Tanh"}))
        return node_error(im, n, "only the default activations (Sigmoid, Tanh, Tanh) are supported");
    if (gru && !strings_are(n, "activations", (int)r->dirs, 2, (const char *[]){"Sigmoid", "Tanh"}))
        return node_error(im, n, "only the default activations (Sigmoid, Tanh) are supported");
    if (!lstm && !gru) {
        r->relu = !strings_are(n, "activations", (int)r->dirs, 1, (const char *[]){"Tanh"});
        if (r->relu && !strings_are(n, "activations", (int)r->dirs, 1, (const char *[]){"Relu"}))
            return node_error(im, n, "activations must be Tanh or Relu, the same for both directions");
    }
    if (has_input(n, 4)) return node_error(im, n, "sequence_lens is not supported (every sequence runs all T steps)");
    if (lstm && has_input(n, 7)) return node_error(im, n, "peepholes (input P) are not supported");
    for (size_t k = 5; k < (lstm ? 7u : 6u); k++)
        if (has_input(n, k) && !zero_state(im, n->input[k], 0))
            return node_error(im, n, "the initial state (input %zu) must be zeros (dendrite starts every sequence from 0)", k);
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k] && *n->output[k] && k == 2 && is_read(im, n->output[k]))
            return node_error(im, n, "Y_c (the final cell state) is read: not supported");
    return DN_OK;
}

/* The next layer of a stack: n's Y, joined (Squeeze(axis 1), or Transpose(0, 2, 1, 3) and Reshape(0, 0, -1)), read
 * by one recurrent node of the same op and settings, and nothing else; its nodes in idx[] (up to 3). */
/* The Concat(axis 0) that is the only reader of n's Y_h, or NULL (torch joins a stacked layer's Y_h's as h_n). */
static const Onnx__NodeProto *yh_concat(importer *im, const Onnx__NodeProto *n, size_t *index)
{
    const Onnx__NodeProto *c = n->n_output > 1 && n->output[1] && *n->output[1] ? only_reader(im, n->output[1], index) : NULL;
    return op_is(c, "Concat") && attr_int(c, "axis", 1) == 0 && c->n_output == 1 && !im->consumed[*index] ? c : NULL;
}

static const Onnx__NodeProto *next_stacked(importer *im, const Onnx__NodeProto *n, const rnn_node *r, size_t *idx,
                                           int *n_idx, const Onnx__NodeProto **hcat)
{
    *n_idx = 0;
    if (n->n_output < 1 || !n->output[0] || !*n->output[0]) return NULL;
    for (size_t k = 1; k < n->n_output; k++) {
        size_t ci = 0;
        const Onnx__NodeProto *c = k == 1 ? yh_concat(im, n, &ci) : NULL;
        if (c && (!*hcat || *hcat == c)) *hcat = c; /* Y_h into h_n: checked once the stack is known */
        else if (n->output[k] && *n->output[k] && is_read(im, n->output[k])) return NULL;
    }
    int64_t v[4];
    int count = 0;
    const Onnx__NodeProto *a = only_reader(im, n->output[0], &idx[0]), *b = NULL;
    if (!a || im->consumed[idx[0]] || a->n_output != 1 || !a->output[0]) return NULL;
    if (r->dirs == 1 && op_is(a, "Squeeze") && a->n_input == 2 && const_ints(im, a, a->input[1], v, 4, &count) &&
        ints_are(v, count, 1, (int64_t[]){1})) {
        b = a;
        *n_idx = 1;
    } else if (r->dirs == 2 && op_is(a, "Transpose") && a->n_attribute == 1 && attr(a, "perm") &&
               attr(a, "perm")->n_ints == 4 && ints_are(attr(a, "perm")->ints, 4, 4, (int64_t[]){0, 2, 1, 3})) {
        b = only_reader(im, a->output[0], &idx[1]);
        if (!op_is(b, "Reshape") || im->consumed[idx[1]] || b->n_output != 1 || b->n_input != 2 || attr_int(b, "allowzero", 0) ||
            !const_ints(im, b, b->input[1], v, 4, &count) || !ints_are(v, count, 3, (int64_t[]){0, 0, -1}))
            return NULL;
        *n_idx = 2;
    } else {
        return NULL;
    }
    const Onnx__NodeProto *c = only_reader(im, b->output[0], &idx[*n_idx]);
    rnn_node rc;
    if (!c || im->consumed[idx[*n_idx]] || !op_is(c, n->op_type) || c->n_input < 3 || strcmp(c->input[0], b->output[0]))
        return NULL;
    if (check_rnn_node(im, c, &rc)) {
        dn_error_clear();
        return NULL; /* not stacked: read (and refused with its reason) on its own */
    }
    if (rc.hidden != r->hidden || rc.dirs != r->dirs || rc.relu != r->relu) return NULL;
    (*n_idx)++;
    return c;
}

/* RNN, LSTM, GRU with X [T, N, I] (layout 0): one dendrite recurrent layer, with the nodes stacked on it (the next
 * node reading this one's joined Y) as its further layers.  Each node's W [D, G*H, I], R [D, G*H, H] and
 * B [D, 2*G*H] go to weight_ih, weight_hh, bias_ih, bias_hh per direction, the gate blocks in dendrite's order. */
static dn_status import_recurrent(importer *im, const Onnx__NodeProto *n, size_t index, const value *x)
{
    dn_status s;
    enum { MAX_STACK = 16 };
    const Onnx__NodeProto *stack[MAX_STACK] = {n}, *hcat = NULL;
    size_t glue[MAX_STACK * 3 + 1];
    int n_glue = 0, layers = 1;
    rnn_node r;
    if ((s = check_rnn_node(im, n, &r))) return s;
    if (x->form != FORM_TIME)
        return node_error(im, n, "X must be a time-major sequence [T, N, I]: the model input read as such, or a sequence "
                                 "through Transpose(1, 0, 2)");
    for (;;) {
        size_t idx[3];
        int k = 0;
        const Onnx__NodeProto *next = layers < MAX_STACK ? next_stacked(im, stack[layers - 1], &r, idx, &k, &hcat) : NULL;
        if (!next) break;
        for (int j = 0; j < k; j++) glue[n_glue++] = idx[j];
        stack[layers++] = next;
    }
    const Onnx__NodeProto *top = stack[layers - 1];
    const bool y_read = top->n_output > 0 && top->output[0] && *top->output[0] && is_read(im, top->output[0]);
    const bool yh_read = top->n_output > 1 && top->output[1] && *top->output[1] && is_read(im, top->output[1]);
    /* h_n of a stack: one Concat(axis 0) of every layer's Y_h, in order, read as the top layer's final state */
    size_t hcat_index = 0;
    if (layers > 1 && (hcat || yh_concat(im, top, &hcat_index))) {
        const Onnx__NodeProto *c = yh_concat(im, top, &hcat_index);
        bool ok = c && (!hcat || c == hcat) && c->n_input == (size_t)layers;
        for (int k = 0; ok && k < layers; k++) ok = !strcmp(c->input[k], stack[k]->output[1]);
        if (!ok)
            return node_error(im, n, "the stacked layers' Y_h are read otherwise than joined in order by one Concat(axis 0) "
                                     "(PyTorch's h_n)");
        hcat = c;
        glue[n_glue++] = hcat_index;
    } else {
        hcat = NULL;
    }
    if (y_read && yh_read) return node_error(im, top, "both Y and Y_h are read (dendrite's layer gives one of them)");
    const bool lstm = op_is(n, "LSTM"), gru = op_is(n, "GRU");
    const int gates = lstm ? 4 : gru ? 3 : 1;
    const int64_t gh = gates * r.hidden, dirs = r.dirs;
    int nd;
    int64_t shape[DN_MAX_DIMS];
    if ((s = make_tail(im, n, x->layer))) return s;
    dn_model_tail_shape(im->m, &nd, shape);
    if (nd != 2) return node_error(im, n, "X must be a sequence, got %s per sample", dn_shape_str(nd, shape));
    /* every node's weights, checked before the layer is built */
    for (int k = 0; k < layers; k++) {
        const Onnx__NodeProto *c = stack[k];
        const int64_t in = k == 0 ? shape[1] : dirs * r.hidden;
        const Onnx__TensorProto *w = const_any(im, c->input[1]), *rr = const_any(im, c->input[2]);
        const Onnx__TensorProto *b = has_input(c, 3) ? const_any(im, c->input[3]) : NULL;
        if (!w || !rr || (has_input(c, 3) && !b)) return node_error(im, c, "W, R and B must be constants");
        if (w->n_dims != 3 || w->dims[0] != dirs || w->dims[1] != gh || w->dims[2] != in || rr->n_dims != 3 ||
            rr->dims[0] != dirs || rr->dims[1] != gh || rr->dims[2] != r.hidden ||
            (b && (b->n_dims != 2 || b->dims[0] != dirs || b->dims[1] != 2 * gh)))
            return node_error(im, c, "W, R, B must be [%lld, %lld, %lld], [%lld, %lld, %lld], [%lld, %lld]", (long long)dirs,
                              (long long)gh, (long long)in, (long long)dirs, (long long)gh, (long long)r.hidden,
                              (long long)dirs, (long long)(2 * gh));
    }
    const char *kind = lstm ? "lstm" : gru ? "gru" : r.relu ? "rnn_relu" : "rnn";
    if ((s = dn_model_add_recurrent(im->m, kind, r.hidden, layers, dirs == 2, 0, !yh_read, false))) {
        dn_error_prefix("%s: node '%s' (%s)", im->path, node_name(n), n->op_type);
        return s;
    }
    if ((s = cfg_printf(im, "\n[%s]\nhidden = %lld\nlayers = %d\nbidirectional = %d\n%sreturn_sequences = %d\n",
                        lstm ? "lstm" : gru ? "gru" : "rnn", (long long)r.hidden, layers, dirs == 2,
                        lstm || gru ? "" : r.relu ? "nonlinearity = relu\n" : "nonlinearity = tanh\n", !yh_read)))
        return s;
    const int *perm = gate_order(n->op_type);
    const dn_layer *l = &im->m->layers[im->m->n_layers - 1];
    for (int k = 0; k < layers && !s; k++) {
        const Onnx__NodeProto *c = stack[k];
        const int64_t in = k == 0 ? shape[1] : dirs * r.hidden;
        float *w = NULL, *rr = NULL, *b = NULL;
        s = tensor_floats(im, c, const_any(im, c->input[1]), &w);
        if (!s) s = tensor_floats(im, c, const_any(im, c->input[2]), &rr);
        if (!s && has_input(c, 3)) s = tensor_floats(im, c, const_any(im, c->input[3]), &b);
        for (int64_t d = 0; d < dirs && !s; d++) {
            /* weight_ih, weight_hh, bias_ih, bias_hh of layer k, direction d */
            const dn_param *p = &im->m->tensors[l->first_tensor + 4 * (k * (int)dirs + (int)d)];
            gates_from_onnx(p[0].t.data, w + d * gh * in, gates, perm, r.hidden, in);
            gates_from_onnx(p[1].t.data, rr + d * gh * r.hidden, gates, perm, r.hidden, r.hidden);
            /* B = [W_b; R_b]; no B: zero biases */
            if (b) {
                gates_from_onnx(p[2].t.data, b + d * 2 * gh, gates, perm, r.hidden, 1);
                gates_from_onnx(p[3].t.data, b + d * 2 * gh + gh, gates, perm, r.hidden, 1);
            } else {
                memset(p[2].t.data, 0, (size_t)gh * sizeof(float));
                memset(p[3].t.data, 0, (size_t)gh * sizeof(float));
            }
        }
        dn_free(w);
        dn_free(rr);
        dn_free(b);
    }
    if (s) return s;
    for (int j = 0; j < n_glue; j++) im->consumed[glue[j]] = true;
    const int layer = im->m->n_layers - 1;
    if (y_read) s = add_form(im, top->output[0], layer, NULL, FORM_Y);
    if (!s && yh_read && !hcat) s = add_form(im, top->output[1], layer, NULL, FORM_YH);
    if (!s && hcat) s = add_form(im, hcat->output[0], layer, NULL, FORM_YH_ALL);
    (void)index;
    return s;
}

/* The sequence part of the importer: the nodes around embeddings and recurrent layers, and any node reading a value
 * in another form than dendrite's (value.form).  *handled false: an ordinary node, for import_node's others. */
static dn_status import_seq_node(importer *im, const Onnx__NodeProto *n, size_t index, bool *handled)
{
    *handled = true;
    bool special = false, shape_in = false, only_shape = true;
    for (size_t k = 0; k < n->n_input; k++) {
        const value *v = has_input(n, k) ? find_value(im, n->input[k]) : NULL;
        if (!v) continue;
        special |= v->form != FORM_PLAIN;
        shape_in |= v->form == FORM_SHAPE;
        only_shape &= v->form == FORM_SHAPE || (v->t && v->form == FORM_PLAIN);
    }
    const value *x = has_input(n, 0) ? find_value(im, n->input[0]) : NULL;
    /* shape computations: torch's initial states are zeros of a shape taken from the input (checked where read) */
    if (shape_in && only_shape &&
        (op_is(n, "Gather") || op_is(n, "Unsqueeze") || op_is(n, "Squeeze") || op_is(n, "Concat") ||
         op_is(n, "ConstantOfShape") || op_is(n, "Slice") || op_is(n, "Cast") || op_is(n, "Reshape") || op_is(n, "Expand")))
        return shape_out(im, n);
    if (op_is(n, "Shape") && x && !x->t) return shape_out(im, n);
    if (op_is(n, "RNN") || op_is(n, "LSTM") || op_is(n, "GRU")) {
        if (!x) return node_error(im, n, "input X is not computed by an earlier node");
        return import_recurrent(im, n, index, x);
    }
    if (op_is(n, "Gather")) return import_seq_gather(im, n, index);
    if (op_is(n, "Identity") && x && x->form != FORM_PLAIN && n->n_output == 1)
        return add_form(im, n->output[0], x->layer, x->t, x->form); /* another name, in the same form */
    if (op_is(n, "Transpose") && x && (special || is_seq(im, x) || x->t)) return import_seq_transpose(im, n, x);
    if (op_is(n, "Cast") && x && x->layer == -1 && !x->t && x->form == FORM_PLAIN && im->m->n_layers == 0 &&
        im->m->in_ndim == 1 && attr_int(n, "to", 0) == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && n->n_output == 1)
        return add_form(im, n->output[0], -1, NULL, FORM_IDS); /* float token ids to int64, for an embedding */
    if ((op_is(n, "Squeeze") || op_is(n, "Reshape")) && x && x->form != FORM_PLAIN) return import_seq_reshape(im, n, x);
    /* (a MatMul of a fixed-size [N, C, L] input is not one: the feed-forward importer reads or refuses it) */
    if (op_is(n, "MatMul") && x && is_seq(im, x) && im->m->variable_length) return import_seq_dense(im, n, index);
    for (size_t k = 0; k < n->n_input; k++) {
        const value *v = has_input(n, k) ? find_value(im, n->input[k]) : NULL;
        if (v && v->form != FORM_PLAIN)
            return node_error(im, n, "input %zu '%s' is %s, which is read only by the node patterns of docs/onnx.md", k,
                              v->name, form_name(v->form));
    }
    *handled = false;
    return DN_OK;
}

/* The one place that picks an importer by op type. */
static dn_status import_node(importer *im, const Onnx__NodeProto *n, size_t index)
{
    const char *op = n->op_type ? n->op_type : "";
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return node_error(im, n, "domain '%s' is not supported (only the standard ONNX ops: %s)", n->domain, supported_ops);
    bool handled = false;
    dn_status st = import_seq_node(im, n, index, &handled);
    if (st || handled) return st;
    if (!strcmp(op, "Mul") || !strcmp(op, "Div") || !strcmp(op, "Sigmoid") || !strcmp(op, "Softplus")) {
        bool matched = false;
        dn_status s = import_pattern(im, n, index, &matched);
        if (s || matched) return s;
    }
    if (!strcmp(op, "Gemm")) return import_dense(im, n, true);
    if (!strcmp(op, "MatMul")) return import_dense(im, n, false);
    if (!strcmp(op, "Conv")) return import_conv(im, n);
    if (!strcmp(op, "MaxPool")) return import_pool(im, n, false);
    if (!strcmp(op, "AveragePool")) return import_pool(im, n, true);
    if (!strcmp(op, "GlobalAveragePool")) return import_global_pool(im, n, true);
    if (!strcmp(op, "GlobalMaxPool")) return import_global_pool(im, n, false);
    if (!strcmp(op, "BatchNormalization")) return import_batchnorm(im, n);
    if (!strcmp(op, "Flatten")) return import_flatten(im, n, false);
    if (!strcmp(op, "Reshape")) return import_flatten(im, n, true);
    if (!strcmp(op, "Relu") || !strcmp(op, "Sigmoid") || !strcmp(op, "Tanh") || !strcmp(op, "LeakyRelu") ||
        !strcmp(op, "Elu") || !strcmp(op, "Selu") || !strcmp(op, "Softplus") || !strcmp(op, "HardSigmoid") ||
        !strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return import_activation_node(im, n);
    if (!strcmp(op, "Neg")) return import_neg(im, n);
    if (!strcmp(op, "PRelu")) return import_prelu(im, n);
    if (!strcmp(op, "Clip")) return import_clip(im, n);
    if (!strcmp(op, "Add")) return import_add(im, n);
    if (!strcmp(op, "Concat")) return import_concat(im, n);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return import_alias(im, n);
    if (!strcmp(op, "Constant")) return import_constant(im, n);
    return node_error(im, n, "op type not supported; the importer reads %s (docs/onnx.md)", supported_ops);
}

/* ------------------------------------------------------------------ the model */

/* The one graph input that is not an initializer: float32 [N, sample...] with a known sample shape. */
static dn_status read_input(importer *im, int *ndim, int64_t *shape)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < im->g->n_input; i++) {
        const Onnx__ValueInfoProto *v = im->g->input[i];
        bool init = false;
        for (size_t k = 0; k < im->g->n_initializer && !init; k++)
            init = v->name && im->g->initializer[k]->name && !strcmp(v->name, im->g->initializer[k]->name);
        if (init) continue;
        if (in) return dn_error(DN_ERR_FORMAT, "%s: the graph has several inputs ('%s', '%s'); a dendrite model has one",
                                im->path, in->name ? in->name : "", v->name ? v->name : "");
        in = v;
    }
    if (!in || !in->name) return dn_error(DN_ERR_FORMAT, "%s: the graph has no input", im->path);
    const Onnx__TypeProto *t = in->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type ||
        (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
         t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64) || !t->tensor_type->shape)
        return dn_error(DN_ERR_FORMAT, "%s: input '%s' must be a float32 tensor (or int64 token ids [N, T]) of known rank",
                        im->path, in->name);
    const Onnx__TensorShapeProto *sh = t->tensor_type->shape;
    bool seq = false;
    dn_status s = read_seq_input(im, in, ndim, shape, &seq);
    if (s || seq) return s;
    if (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return dn_error(DN_ERR_FORMAT, "%s: input '%s' is int64 but not token ids [N, T] read by an embedding (Gather)",
                        im->path, in->name);
    if (sh->n_dim < 2 || sh->n_dim > 4)
        return dn_error(DN_ERR_FORMAT, "%s: input '%s' has %zu dimensions; the importer reads [N, F], [N, C, L] and "
                                       "[N, C, H, W]", im->path, in->name, sh->n_dim);
    *ndim = (int)sh->n_dim - 1;
    for (size_t i = 1; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value < 1 ||
            d->dim_value > (1 << 24))
            return dn_error(DN_ERR_FORMAT, "%s: input '%s' dimension %zu must be a fixed size (only the batch axis may "
                                           "vary)", im->path, in->name, i);
        shape[i - 1] = d->dim_value;
    }
    return add_value(im, in->name, -1, NULL);
}

/* A graph whose output is its input (only Identity or Dropout nodes): one identity activation layer, since a model
 * has at least one layer. */
static dn_status add_identity(importer *im)
{
    dn_status s = dn_model_add_activation(im->m, "identity", NULL);
    return s ? s : cfg_printf(im, "\n[activation]\ntype = identity\n");
}

static dn_status import_graph(importer *im, dn_model **out, dn_train_config *train)
{
    dn_status s;
    const Onnx__GraphProto *g = im->g;
    if (g->n_node > ONNX_MAX_NODES)
        return dn_error(DN_ERR_FORMAT, "%s: %zu nodes, more than the importer's limit of %d", im->path, g->n_node, ONNX_MAX_NODES);
    if (g->n_output != 1 || !g->output[0]->name)
        return dn_error(DN_ERR_FORMAT, "%s: the graph has %zu outputs; a dendrite model has one", im->path, g->n_output);
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((s = add_value(im, g->initializer[i]->name, -1, g->initializer[i]))) return s;
    int ndim = 0;
    int64_t shape[DN_MAX_DIMS];
    if ((s = read_input(im, &ndim, shape))) return s;
    if ((s = dn_model_new(ndim, shape, 1, &im->m))) return s;
    if ((s = cfg_printf(im, "# imported from %s by dendrite import (docs/onnx.md)\n[net]\ninput = ", im->path))) return s;
    for (int i = 0; i < ndim; i++)
        if ((s = cfg_printf(im, "%s%lld", i ? ", " : "", (long long)shape[i]))) return s;
    if ((s = cfg_printf(im, "\n"))) return s;
    im->consumed = dn_calloc(g->n_node ? g->n_node : 1, sizeof *im->consumed);
    if (!im->consumed) return DN_ERR_NOMEM;
    for (size_t i = 0; i < g->n_node; i++) {
        if (im->consumed[i]) continue;
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type) return dn_error(DN_ERR_FORMAT, "%s: node %zu has no op type", im->path, i);
        im->consumed[i] = true; /* done: a pattern tried from a later node must not take it again */
        if ((s = import_node(im, n, i))) return s;
    }
    const value *v = find_value(im, g->output[0]->name);
    if (!v || v->t) return dn_error(DN_ERR_FORMAT, "%s: the graph output '%s' is not computed by the graph", im->path, g->output[0]->name);
    if (v->form) return dn_error(DN_ERR_FORMAT, "%s: the graph output '%s' is %s, not in dendrite's layout", im->path,
                                 g->output[0]->name, form_name(v->form));
    if (v->layer < 0 && im->m->n_layers)
        return dn_error(DN_ERR_FORMAT, "%s: the graph output is its input, but other nodes compute layers", im->path);
    if (v->layer < 0) {
        if ((s = add_identity(im))) return s;
    } else if (v->layer != im->m->n_layers - 1) {
        int layer = v->layer;
        if ((s = dn_model_add_route(im->m, 1, &layer)) || (s = cfg_printf(im, "\n[route]\nlayers = %d\n", layer))) return s;
    }
    /* the model again from its cfg text, as a checkpoint loads it, and the parameters moved over */
    dn_model *m2 = NULL;
    if ((s = dn_model_from_cfg(im->cfg, im->path, &m2, train))) {
        dn_error_prefix("the imported model's cfg text does not build");
        return s;
    }
    if (m2->n_params != im->m->n_params || m2->n_bufdata != im->m->n_bufdata || m2->n_layers != im->m->n_layers) {
        dn_model_free(m2);
        return dn_error(DN_ERR_STATE, "%s: the cfg text written for the imported model builds a different model", im->path);
    }
    if (m2->n_params) memcpy(m2->params, im->m->params, m2->n_params * sizeof(float)); /* none: an activation alone */
    if (m2->n_bufdata) memcpy(m2->bufdata, im->m->bufdata, m2->n_bufdata * sizeof(float));
    *out = m2;
    return DN_OK;
}

dn_status dn_model_import_onnx(const char *path, dn_model **model, dn_train_config *train)
{
    if (!path || !model) return dn_error(DN_ERR_ARG, "dn_model_import_onnx: path and model must not be NULL");
    *model = NULL;
    char *buf = NULL;
    size_t len = 0;
    dn_status s = dn_read_file(path, ONNX_MAX_BYTES, &buf, &len);
    if (s) return s;
    bool oom = false;
    ProtobufCAllocator alloc = {pb_alloc, pb_free, &oom};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, len, (const uint8_t *)buf);
    dn_free(buf);
    if (!mp && oom) return dn_error(DN_ERR_NOMEM, "%s: out of memory while parsing the ONNX file", path);
    if (!mp) return dn_error(DN_ERR_FORMAT, "%s: not an ONNX model (the protobuf does not parse as a ModelProto)", path);
    importer im = {.path = path};
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version) im.opset = (int)o->version;
    }
    if (!mp->graph) s = dn_error(DN_ERR_FORMAT, "%s: the model has no graph", path);
    else if (im.opset < 1 || im.opset > 21)
        s = dn_error(DN_ERR_FORMAT, "%s: opset %d of the standard domain (the importer reads opsets 1 to 21)", path, im.opset);
    else {
        im.g = mp->graph;
        for (size_t i = 0; i < mp->n_metadata_props; i++)
            if (mp->metadata_props[i]->key && !strcmp(mp->metadata_props[i]->key, "net.input")) im.meta_input = mp->metadata_props[i]->value;
        s = import_graph(&im, model, train);
    }
    dn_model_free(im.m);
    dn_free(im.cfg);
    dn_free(im.vals);
    dn_free(im.consumed);
    onnx__model_proto__free_unpacked(mp, &alloc);
    return s;
}
