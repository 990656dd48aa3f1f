/* Internal view of a model (src/nn/), for the cfg builder, the trainer and checkpoints. */
#ifndef DN_MODEL_H
#define DN_MODEL_H

#include "internal.h"

/* A layer's FLOP estimate, computed in double and saturated: a model too big to build would otherwise overflow
 * the int64 product (the figure is for the summary, so a saturated one is still the honest "huge"). */
static inline int64_t dn_flop_estimate(double flops) { return flops < 9.0e18 ? (int64_t)flops : (int64_t)9.0e18; }

typedef enum {
    DN_LAYER_DENSE,
    DN_LAYER_ACTIVATION,
    DN_LAYER_FLATTEN,
    DN_LAYER_CONV2D,
    DN_LAYER_POOL,        /* max / avg / min over windows */
    DN_LAYER_GLOBAL_POOL, /* avg / max over H, W */
    DN_LAYER_BATCHNORM,
    DN_LAYER_DROPOUT,     /* elements, or whole channels (dropout2d) */
    DN_LAYER_SHORTCUT,    /* previous output + an earlier layer's output (ResNet) */
    DN_LAYER_ROUTE,       /* earlier outputs joined along channels (Inception) */
    DN_LAYER_EMBEDDING,   /* token ids [T] -> vectors [T, E] */
    DN_LAYER_RECURRENT,   /* RNN / LSTM / GRU over [T, F] */
    DN_LAYER_KIND_COUNT   /* the number of kinds: the layer table has one entry each (layer_table.c) */
} dn_layer_kind;

#define DN_MAX_ROUTE 8
#define DN_MAX_CARRY 32 /* carried recurrent states (h, and c for LSTM) per model */

typedef struct dn_layer {
    dn_layer_kind kind;
    char type[32];               /* "dense", "conv2d", "max_pool2d", "relu", ... */
    const dn_op *op;             /* the op it applies, found when the layer is built */
    const dn_op *op_relu;        /* its fused form with a ReLU (dense: linear_relu, conv2d: conv2d_relu) */
    double attr[DN_MAX_ATTRS];
    const dn_op *act;            /* activation fused after the layer, or NULL */
    double act_attr[DN_MAX_ATTRS];
    int first_tensor, n_tensors; /* its parameters in the model's tensor list */
    int first_buffer, n_buffers; /* its running statistics in the buffer list */
    int out_ndim;
    int64_t out_shape[DN_MAX_DIMS]; /* one sample */
    int64_t units;               /* dense units / conv filters */
    int kh, kw, stride, pad, dilation, groups; /* conv and pooling */
    dn_init init;
    bool bias;
    float param_init;            /* prelu alpha / swish beta start value */
    float p;                     /* dropout probability */
    bool channel_dropout;        /* dropout2d: whole channels */
    float momentum, eps;         /* batch norm */
    int n_from;
    int from[DN_MAX_ROUTE];      /* shortcut / route: absolute layer indices (-1: the model input) */
    bool per_step;               /* dense over a sequence [T, F]: applied at every step */
    int rnn_kind;                /* recurrent: dn_rnn_kind */
    int rnn_layers;
    bool bidirectional, return_sequences, stateful;
    int state_first;             /* recurrent: index of its carried state in the model's carry list */
    int64_t flops;               /* per sample */
} dn_layer;

typedef struct dn_param {
    char name[64];
    size_t offset;               /* into the flat buffers */
    bool decay;                  /* weight decay / L1 / L2 applies */
    dn_tensor t;                 /* data and grad point into the flat buffers */
} dn_param;

struct dn_model {
    int in_ndim;
    int64_t in_shape[DN_MAX_DIMS];
    dn_layer *layers;
    int n_layers, cap_layers;
    dn_param *tensors;           /* trained parameters */
    int n_tensors, cap_tensors;
    float *params, *grads;
    uint8_t *decay;
    size_t n_params, cap_params;
    dn_param *buffers;           /* state that is saved but not trained (batch-norm running statistics) */
    int n_buffers, cap_buffers;
    float *bufdata;
    size_t n_bufdata, cap_bufdata;
    dn_rng rng;
    bool training;
    bool variable_length;        /* starts with an embedding or recurrent layer: any T is accepted */
    char *cfg_text;
    /* truncated BPTT: hidden (and cell) state carried from one batch to the next, values only */
    float *carry[DN_MAX_CARRY];
    int64_t carry_numel[DN_MAX_CARRY];
    int n_carry;
    bool streaming;              /* inference a step at a time: every recurrent layer carries its state */
    /* input normalisation (CSV normalize = 1): per-feature mean and std of the training part, or NULL */
    float *in_mean, *in_std;
    int64_t in_stats_n;
    dn_vocab vocab;              /* for text models: id -> byte (size 0 if none) */
};

/* Shape of the data flowing into the next layer added (one sample). */
void dn_model_tail_shape(const dn_model *m, int *ndim, int64_t *shape);
dn_status dn_model_set_cfg_text(dn_model *m, const char *text);
/* Storage helpers for layer constructors (model.c): each returns an index, or -1 when out of memory. */
int dn_model_add_param(dn_model *m, const char *name, int ndim, const int64_t *shape, bool decay);
int dn_model_add_buffer(dn_model *m, const char *name, int64_t n, float value);
/* A new layer at the end (not yet counted in n_layers: the caller increments once it is complete). */
dn_layer *dn_model_new_layer(dn_model *m, dn_layer_kind kind, const char *type);
void dn_model_init_weights(dn_model *m, float *w, int64_t n, float *b, int64_t nb, int64_t fan_in, int64_t fan_out,
                           dn_init init);
/* Sequence layers (seq.c). */
dn_tensor *dn_layer_recurrent_forward(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *x);
void dn_model_init_recurrent(dn_model *m, const dn_layer *l);
/* Fuses an activation (no parameters) into the last layer added, keeping layer indices = cfg sections. */
dn_status dn_model_fuse_activation(dn_model *m, const char *name, const char *attrs);

#endif
