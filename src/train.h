/* Internal view of a trainer (train.c, train_checkpoint.c). */
#ifndef DN_TRAIN_H
#define DN_TRAIN_H

#include "nn/model.h"

/* What a checkpoint keeps of a trainer besides the model's tensors and the optimiser's buffers: everything that
 * decides the next step's numbers.  The trainer itself is private to train.c; train_checkpoint.c reads and writes it
 * through these functions only. */
typedef struct dn_trainer_state {
    int epochs_done;
    bool finished;
    double best;          /* best monitored value so far (NaN: none) */
    int bad_epochs;
    dn_optim_kind optim_kind;
    int64_t optim_step;
    dn_rng batcher_rng, model_rng;
    float sched_best, sched_lr;
    int sched_bad_epochs, sched_cooldown_left;
} dn_trainer_state;
void dn_trainer_get_state(const dn_trainer *t, dn_trainer_state *st);
/* Applies st (epochs_done, generators, early-stopping and schedule state, optimiser step). */
void dn_trainer_set_state(dn_trainer *t, const dn_trainer_state *st);
dn_model *dn_trainer_model(const dn_trainer *t); /* the model being trained */
dn_optim *dn_trainer_optim(const dn_trainer *t); /* its optimiser (state buffers) */
/* The snapshot taken at the best epoch: parameters (param_count floats) and buffers (batch-norm running
 * statistics, n_bufdata floats); NULL while there is none. */
const float *dn_trainer_best_params(const dn_trainer *t);
const float *dn_trainer_best_buffers(const dn_trainer *t);
/* Sets the snapshot (resume); buffers may be NULL (a checkpoint from before buffers were kept). */
dn_status dn_trainer_set_best(dn_trainer *t, const float *params, const float *buffers);

/* The configured loss of a batch's output against labels y (n of them). */
/* ts: targets per sample (1, or T for a class per time step) */
dn_tensor *dn_apply_loss(dn_ctx *ctx, const dn_train_config *c, dn_tensor *out, const float *y, int64_t n, int64_t ts);
int64_t dn_count_correct(const dn_train_config *c, const dn_tensor *out, const float *y, int64_t n, int64_t *confusion,
                         int n_classes);

/* The validation split of a training set: fraction c->validation held out, seeded from c->seed.  The trainer and the
 * run both make it through here, so the run's normalisation sees exactly the part the trainer trains on. */
dn_status dn_validation_split(const dn_dataset *d, const dn_train_config *c, dn_dataset **train, dn_dataset **val);

#endif
