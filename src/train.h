/* Internal view of a trainer (train.c, train_state.c). */
#ifndef DN_TRAIN_H
#define DN_TRAIN_H

#include "nn/model.h"

struct dn_trainer {
    dn_model *m;
    dn_train_config cfg;
    const dn_dataset *train, *val;
    dn_dataset *own_train, *own_val; /* made by a validation split */
    dn_batcher *batcher;
    dn_optim *opt;
    dn_schedule schedule;
    dn_ctx *ctx;
    float *xbuf, *ybuf;
    uint8_t *mask;        /* decay mask actually used (biases included when decay_bias) */
    int epochs_done;
    bool finished;
    double best;          /* best monitored value so far (NaN: none) */
    int bad_epochs;
    float *best_params;   /* copy of the parameters at the best epoch */
    dn_batch_fn batch_fn;
    void *batch_user;
};

/* The configured loss of a batch's output against labels y (n of them). */
/* ts: targets per sample (1, or T for a class per time step) */
dn_tensor *dn_apply_loss(dn_ctx *ctx, const dn_train_config *c, dn_tensor *out, const float *y, int64_t n, int64_t ts);
int64_t dn_count_correct(const dn_train_config *c, const dn_tensor *out, const float *y, int64_t n, int64_t *confusion,
                         int n_classes);

#endif
