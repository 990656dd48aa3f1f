/* Internal interface of data-parallel training (docs/distributed.md), floor 7.  The transport is mpi.c (make MPI=1)
 * or no_mpi.c (a group of one process); grad_sync.c all-reduces the flat gradient buffer in buckets while backward
 * still runs. */
#ifndef DN_DIST_H
#define DN_DIST_H

#include "nn/model.h"

/* True when dn_dist_init has run and the group has more than one process: only then does anything shard. */
bool dist_active(void);
/* The replica of this process (rank, size and dist_sum) for a context that computes one shard (internal.h). */
const dn_replica *dist_replica(void);
/* Adds n doubles in place over all processes (MPI_Allreduce); every process gets the same bits.  Collective. */
dn_status dist_sum(double *buf, size_t n);
/* *equal: whether v is the same on every process.  Collective. */
dn_status dist_all_equal(uint64_t v, bool *equal);
/* Starts adding n floats in place over all processes (MPI_Iallreduce); dist_wait completes every sum started. */
dn_status dist_isum_float(float *buf, size_t n);
void dist_progress(void); /* lets the sums in flight advance (MPI_Testall) */
dn_status dist_wait(void);

/* The gradient all-reduce of one model, overlapped with backward.  Before dn_backward, grad_sync_begin reads the
 * tape: for each parameter the node that writes its gradient last (backward visits the tape newest first, so that
 * is the oldest node taking the parameter).  grad_sync_node, the backward hook, marks that node's parameters final;
 * a bucket (a fixed range of the flat gradient buffer, counted from its end, since backward reaches the last layers
 * first) whose parameters are all final starts its sum at once.  Buckets start in the same order on every process
 * (last to first) whatever the timing, as MPI requires of collectives.  grad_sync_finish starts the rest and waits. */
typedef struct grad_sync grad_sync;
dn_status grad_sync_new(dn_model *m, grad_sync **out);
void grad_sync_free(grad_sync *g);
void grad_sync_begin(grad_sync *g, const dn_ctx *ctx);
void grad_sync_node(void *g, const dn_node *node);
/* Starts what is left, waits for every sum; *wait_seconds += the time spent waiting. */
dn_status grad_sync_finish(grad_sync *g, double *wait_seconds);
size_t grad_sync_bucket_floats(const grad_sync *g);
/* Tests: shadow (param_count floats) receives each bucket's values at the moment its sum starts, which must be the
 * final gradient; early_buckets counts the buckets of the last step that started before backward ended. */
void grad_sync_set_shadow(grad_sync *g, float *shadow);
int grad_sync_early_buckets(const grad_sync *g);

/* dn_evaluate, sharded over the group when it is active (train.c). */
dn_status dist_evaluate(dn_model *m, const dn_train_config *c, const dn_dataset *d, dn_eval_result *r,
                        int64_t *confusion);

#endif
