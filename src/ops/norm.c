/* Batch normalisation (torch.nn.functional.batch_norm): one op over x [N, C, ...] with per-channel
 * statistics, gamma/beta, and running statistics that training updates in place.
 *
 * Layout: x is [N, C] (BatchNorm1d), [N, C, L] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d), and any rank
 * >= 2 works the same way.  Channel c owns the elements x[n, c, i] for every sample n and every position i of
 * the trailing axes ("inner" = L or H*W, 1 for 2-d x), so one channel is N blocks of `inner` contiguous
 * floats, and its statistics run over m = N * inner values. */
#include "internal.h"
#include "kernels/bnorm.h"

#include <math.h>

enum { IN_X, IN_GAMMA, IN_BETA, IN_RMEAN, IN_RVAR };
enum { ATTR_TRAINING, ATTR_MOMENTUM, ATTR_EPS };

/* What backward needs: the input and gamma as forward read them, and the statistics that normalised x
 * (batch ones in training, running ones in evaluation, copied because training overwrites the running
 * ones and the caller may too). */
typedef struct bn_saved {
    const float *x;     /* [N, C, inner], contiguous */
    const float *gamma; /* [C] */
    double *mean;       /* [C] */
    double *invstd;     /* [C]: 1 / sqrt(var + eps) */
    int64_t n, channels, inner;
    const dn_replica *sync; /* training on a shard: the statistics are the global batch's (see bn_fwd) */
    double m;               /* values per channel in the batch the statistics ran over (global when sync) */
} bn_saved;

/* A shard of a batch spread over several replicas (ctx->replica, size > 1) normalises with the whole batch's
 * statistics in training.  A replica of size 1 holds the whole batch, so it computes as without one. */
static const dn_replica *sync_replica(const dn_ctx *ctx, bool training)
{
    return training && ctx->replica && ctx->replica->size > 1 ? ctx->replica : NULL;
}

static dn_status check_param(const dn_tensor *x, const dn_tensor *p, const char *what)
{
    if (p->ndim != 1 || p->shape[0] != x->shape[1])
        return dn_error(DN_ERR_SHAPE, "batch_norm: %s must be [%lld] (one per channel, axis 1 of x %s), got %s", what,
                        (long long)x->shape[1], dn_tshape(x), dn_tshape(p));
    return DN_OK;
}

/* Shapes and attributes, checked before anything is computed or written. */
static dn_status bn_check(const dn_ctx *ctx, const dn_node *node)
{
    const dn_tensor *x = node->in[IN_X];
    bool training = node->attr[ATTR_TRAINING] != 0;
    double momentum = node->attr[ATTR_MOMENTUM], eps = node->attr[ATTR_EPS];
    if (x->ndim < 2)
        return dn_error(DN_ERR_SHAPE, "batch_norm: x must be [N, C], [N, C, L] or [N, C, H, W], got %s", dn_tshape(x));
    static const char *const names[] = {"", "gamma", "beta", "running_mean", "running_var"};
    for (int i = IN_GAMMA; i <= IN_RVAR; i++) {
        dn_status s = check_param(x, node->in[i], names[i]);
        if (s) return s;
    }
    if (!(eps >= 0) || isinf(eps)) return dn_error(DN_ERR_ARG, "batch_norm: eps must be finite and >= 0, got %g", eps);
    if (!(momentum >= 0 && momentum <= 1))
        return dn_error(DN_ERR_ARG, "batch_norm: momentum must be in [0, 1], got %g", momentum);
    if (training) {
        /* the unbiased variance divides by m - 1, and one value has no spread to normalise */
        int64_t m = dn_tensor_numel(x) / (x->shape[1] ? x->shape[1] : 1);
        if (sync_replica(ctx, training)) {
            if (ctx->global_batch < x->shape[0] || ctx->shard_offset < 0)
                return dn_error(DN_ERR_ARG, "batch_norm: a shard of %lld samples at %lld does not fit a global batch of "
                                            "%lld", (long long)x->shape[0], (long long)ctx->shard_offset,
                                (long long)ctx->global_batch);
            m = ctx->global_batch; /* the global batch's values per channel */
            for (int i = 2; i < x->ndim; i++) m *= x->shape[i];
        }
        if (m == 1)
            return dn_error(DN_ERR_SHAPE, "batch_norm: expected more than 1 value per channel when training, got x %s",
                            dn_tshape(x));
        /* a broadcast view (stride 0) would make every channel write the same float */
        for (int i = IN_RMEAN; i <= IN_RVAR; i++)
            if (node->in[i]->stride[0] == 0 && node->in[i]->shape[0] > 1)
                return dn_error(DN_ERR_ARG, "batch_norm: %s %s is a broadcast view and cannot be updated in place",
                                names[i], dn_tshape(node->in[i]));
    }
    return DN_OK;
}

/* Training: the kernel (kernels/bnorm.h) has the batch mean and biased variance per channel (two passes, so no
 * cancellation; float lanes folded into double; threaded over channels):
 *     mean = (1/m) sum x,   var = (1/m) sum (x - mean)^2
 * and the running estimates move towards them, the variance unbiased as torch does:
 *     running_mean = (1 - momentum) running_mean + momentum mean
 *     running_var  = (1 - momentum) running_var  + momentum var m / (m - 1) */
static void update_running(const bn_saved *sv, const double *var, dn_tensor *rmean, dn_tensor *rvar, double momentum)
{
    const double m = sv->m;
    for (int64_t c = 0; c < sv->channels; c++) {
        /* the running statistics are rank 1, so element c sits at c * stride[0] even in a view */
        float *rm = rmean->data + c * rmean->stride[0], *rv = rvar->data + c * rvar->stride[0];
        *rm = (float)((1 - momentum) * *rm + momentum * sv->mean[c]);
        *rv = (float)((1 - momentum) * *rv + momentum * var[c] * m / (m - 1));
    }
}

/* Synchronised statistics: every replica adds its shard's per-channel sum x and value count (one replica->sum), so
 * each has the global mean; then its sum (x - mean)^2 around that mean (a second sum), so each has the global
 * (biased) variance, two-pass as on one process.  An empty shard adds zeros and makes both calls. */
static dn_status sync_statistics(dn_ctx *ctx, const bn_saved *sv, double *var)
{
    const dn_replica *rep = sv->sync;
    const int64_t C = sv->channels;
    double *buf = dn_ctx_alloc(ctx, (size_t)(C + 1) * sizeof(double));
    if (!buf) return DN_ERR_NOMEM;
    dn_bnorm_sum(sv->x, sv->n, C, sv->inner, buf);
    buf[C] = (double)(sv->n * sv->inner);
    dn_status s = rep->sum(rep->user, buf, (size_t)C + 1);
    if (s) return s;
    if (buf[C] != sv->m)
        return dn_error(DN_ERR_STATE, "batch_norm: the replicas' shards hold %.17g values per channel, but the global "
                                      "batch of %lld samples holds %.17g", buf[C], (long long)ctx->global_batch, sv->m);
    for (int64_t c = 0; c < C; c++) sv->mean[c] = buf[c] / sv->m;
    dn_bnorm_sum_sq(sv->x, sv->n, C, sv->inner, sv->mean, var);
    s = rep->sum(rep->user, var, (size_t)C);
    if (s) return s;
    for (int64_t c = 0; c < C; c++) var[c] /= sv->m;
    return DN_OK;
}

/* y = gamma (x - mean) / sqrt(var + eps) + beta, with batch statistics (training) or running ones. */
static dn_status bn_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_status st = bn_check(ctx, node);
    if (st) return st;
    dn_tensor *x = node->in[IN_X];
    bool training = node->attr[ATTR_TRAINING] != 0;
    double eps = node->attr[ATTR_EPS];
    bn_saved *sv = dn_ctx_alloc(ctx, sizeof *sv);
    if (!sv) return DN_ERR_NOMEM;
    sv->n = x->shape[0];
    sv->channels = x->shape[1];
    sv->inner = 1;
    for (int i = 2; i < x->ndim; i++) sv->inner *= x->shape[i];
    sv->sync = sync_replica(ctx, training);
    sv->m = (double)(sv->sync ? ctx->global_batch : sv->n) * (double)sv->inner;
    sv->x = dn_ctx_contig(ctx, x);
    sv->gamma = dn_ctx_contig(ctx, node->in[IN_GAMMA]);
    const float *beta = dn_ctx_contig(ctx, node->in[IN_BETA]);
    sv->mean = dn_ctx_alloc(ctx, (size_t)(sv->channels + 1) * sizeof(double));
    sv->invstd = dn_ctx_alloc(ctx, (size_t)(sv->channels + 1) * sizeof(double));
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, x->shape);
    if (!sv->x || !sv->gamma || !beta || !sv->mean || !sv->invstd || !y) return DN_ERR_NOMEM;

    double *var = dn_ctx_alloc(ctx, (size_t)(sv->channels + 1) * sizeof(double));
    if (!var) return DN_ERR_NOMEM;
    if (training && sv->m == 0) {
        /* an empty batch: nothing to normalise and no statistics to learn from (torch returns it as is) */
        for (int64_t c = 0; c < sv->channels; c++) {
            sv->mean[c] = 0;
            sv->invstd[c] = 1;
        }
    } else {
        if (sv->sync) {
            st = sync_statistics(ctx, sv, var);
            if (st) return st;
        } else if (!training) {
            const float *rm = dn_ctx_contig(ctx, node->in[IN_RMEAN]), *rv = dn_ctx_contig(ctx, node->in[IN_RVAR]);
            if (!rm || !rv) return DN_ERR_NOMEM;
            for (int64_t c = 0; c < sv->channels; c++) {
                sv->mean[c] = rm[c];
                var[c] = rv[c];
            }
        }
        /* statistics (training) and y = (x - mean) gamma / sqrt(var + eps) + beta: in float, vectorised, threaded
         * over channels */
        dn_bnorm_forward(sv->x, y->data, sv->n, sv->channels, sv->inner, sv->gamma, beta, eps, training && !sv->sync,
                         sv->mean, var);
        for (int64_t c = 0; c < sv->channels; c++) sv->invstd[c] = 1.0 / sqrt(var[c] + eps);
        if (training) update_running(sv, var, node->in[IN_RMEAN], node->in[IN_RVAR], node->attr[ATTR_MOMENTUM]);
    }
    node->out = y;
    node->saved = sv;
    return DN_OK;
}

/* With xhat = (x - mean) invstd and means over the m values of a channel:
 *     dbeta  = sum dy,   dgamma = sum dy xhat
 *     training:   dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat))
 *     evaluation: dx = gamma invstd dy          (the running statistics are constants)
 * The two extra terms in training are the paths through the batch mean and variance, which depend on x. */
static dn_status bn_bwd(dn_ctx *ctx, dn_node *node)
{
    const bn_saved *sv = node->saved;
    const float *dy = node->out->grad;
    dn_tensor *x = node->in[IN_X], *gamma = node->in[IN_GAMMA], *beta = node->in[IN_BETA];
    bool training = node->attr[ATTR_TRAINING] != 0;
    float *dx = x->requires_grad ? dn_grad_buf(ctx, x) : NULL;
    float *dgamma = gamma->requires_grad ? dn_grad_buf(ctx, gamma) : NULL;
    float *dbeta = beta->requires_grad ? dn_grad_buf(ctx, beta) : NULL;
    if ((x->requires_grad && !dx) || (gamma->requires_grad && !dgamma) || (beta->requires_grad && !dbeta))
        return DN_ERR_NOMEM;
    const int64_t C = sv->channels;
    /* per channel: sum dy and sum dy (x - mean), and dx, in one kernel call (threaded over channels) */
    double *sum_dy = dn_ctx_alloc(ctx, (size_t)(2 * C + 1) * sizeof(double)), *sum_dy_xc = sum_dy + C;
    if (!sum_dy) return DN_ERR_NOMEM;
    /* synchronised: this shard's sums first (its share of dgamma and dbeta), then dx from the global sums */
    const bool sync = sv->sync && sv->m > 0;
    dn_bnorm_backward(sv->x, dy, sync ? NULL : dx, sv->n, C, sv->inner, sv->gamma, sv->mean, sv->invstd, training,
                      sum_dy, sum_dy_xc);
    for (int64_t c = 0; c < C; c++) {
        if (dgamma) dgamma[c] += (float)(sum_dy_xc[c] * sv->invstd[c]); /* sum dy xhat */
        if (dbeta) dbeta[c] += (float)sum_dy[c];
    }
    if (sync) {
        dn_status s = sv->sync->sum(sv->sync->user, sum_dy, (size_t)(2 * C));
        if (s) return s;
        dn_bnorm_backward_dx(sv->x, dy, dx, sv->n, C, sv->inner, sv->gamma, sv->mean, sv->invstd, sv->m, sum_dy,
                             sum_dy_xc);
    }
    return DN_OK;
}

/* Gradient checks: both modes, 2-d and 4-d.  The checker re-runs forward for every finite difference, so in
 * training the running statistics drift; the output does not depend on them then, and in evaluation forward
 * leaves them alone.  running_var is kept well above 0. */
#define BN_PARAMS(c)                                                                                        \
    {1, {c}, DN_FILL_UNIFORM, 0.5f, 1.5f}, {1, {c}, DN_FILL_UNIFORM, -1, 1}, {1, {c}, DN_FILL_UNIFORM, -1, 1}, \
        {1, {c}, DN_FILL_UNIFORM, 0.5f, 2}
static const dn_case bn_cases[] = {
    {5, {{2, {4, 3}, DN_FILL_UNIFORM, -2, 2}, BN_PARAMS(3)}, "training=1"},
    {5, {{4, {2, 3, 2, 2}, DN_FILL_UNIFORM, -2, 2}, BN_PARAMS(3)}, "training=1 momentum=0.3"},
    {5, {{2, {4, 3}, DN_FILL_UNIFORM, -2, 2}, BN_PARAMS(3)}, "training=0"},
    {5, {{4, {2, 3, 2, 2}, DN_FILL_UNIFORM, -2, 2}, BN_PARAMS(3)}, "training=0 eps=0.01"},
};
#define BN_CASES .cases = bn_cases, .n_cases = (int)(sizeof bn_cases / sizeof bn_cases[0])

const dn_op dn_ops_norm[] = {
    {.name = "batch_norm", .arity = 5, .n_attrs = 3, .attr_names = {"training", "momentum", "eps"},
     .attr_defaults = {1, 0.1, 1e-5}, .nondiff = (1u << IN_RMEAN) | (1u << IN_RVAR), .forward = bn_fwd,
     .backward = bn_bwd,
     .doc = "y = gamma (x - mean) / sqrt(var + eps) + beta per channel (axis 1); inputs x, gamma, beta, "
            "running_mean, running_var; training updates the running statistics in place",
     BN_CASES},
    {0},
};

dn_tensor *dn_batch_norm(dn_ctx *ctx, dn_tensor *x, dn_tensor *gamma, dn_tensor *beta, dn_tensor *running_mean,
                         dn_tensor *running_var, bool training, float momentum, float eps)
{
    dn_tensor *in[] = {x, gamma, beta, running_mean, running_var};
    double a[] = {training ? 1 : 0, momentum, eps};
    return dn_apply(ctx, "batch_norm", 5, in, a);
}
