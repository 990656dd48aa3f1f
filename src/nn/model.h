/* Internal view of a model (src/nn/), for the cfg builder, the trainer and checkpoints. */
#ifndef DN_MODEL_H
#define DN_MODEL_H

#include "internal.h"

typedef enum { DN_LAYER_DENSE, DN_LAYER_ACTIVATION, DN_LAYER_FLATTEN } dn_layer_kind;

typedef struct dn_layer {
    dn_layer_kind kind;
    char type[32];               /* "dense", "relu", "flatten", ... */
    const dn_op *op;             /* activations */
    double attr[DN_MAX_ATTRS];
    int first_tensor, n_tensors; /* its parameters in the model's tensor list */
    int out_ndim;
    int64_t out_shape[DN_MAX_DIMS]; /* one sample */
    int64_t units;
    dn_init init;
    bool bias;
    float param_init;            /* prelu alpha / swish beta start value */
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
    dn_param *tensors;
    int n_tensors, cap_tensors;
    float *params, *grads;
    uint8_t *decay;
    size_t n_params, cap_params;
    dn_rng rng;
    bool training;
    char *cfg_text;
};

/* Shape of the data flowing into the next layer added (one sample). */
void dn_model_tail_shape(const dn_model *m, int *ndim, int64_t *shape);
dn_status dn_model_set_cfg_text(dn_model *m, const char *text);

#endif
