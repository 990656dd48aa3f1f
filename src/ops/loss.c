/* Losses: input 0 is the prediction, input 1 the target (which never takes a gradient).  The last
 * attribute of every loss is `reduction` (DN_REDUCE_MEAN, _SUM or _NONE), as in torch.nn.
 *
 * Two families share their plumbing:
 *   - elementwise losses (mse, l1, huber, bce, bce_with_logits, hinge): one term per element, target of
 *     the prediction's shape;
 *   - row-wise losses (the cross-entropies, nll, multi-margin): classes on axis 1 of [N, C, d1, ...], one
 *     term per sample (n, d1, ...).
 * mean divides by the number of terms; sum adds them; none returns them all.  Sums accumulate in double in
 * index order, so results do not depend on anything but the inputs.
 *
 * In a context that holds a shard of a batch (ctx->replica), the prediction's axis 0 is the shard's samples and mean
 * divides by the number of terms of the whole batch (ctx->global_batch samples): the loss a shard returns is its
 * share, and the shards' losses and gradients add up to the whole batch's.  An empty shard's share is 0. */
#include "internal.h"
#include "kernels/softmax.h"

#include <math.h>

/* ------------------------------------------------------------------ shared checks */

static dn_status get_reduction(const dn_node *node, int *red)
{
    double r = node->attr[node->op->n_attrs - 1];
    if (r != DN_REDUCE_MEAN && r != DN_REDUCE_SUM && r != DN_REDUCE_NONE)
        return dn_error(DN_ERR_ARG, "reduction must be 0 (mean), 1 (sum) or 2 (none), got %g", r);
    *red = (int)r;
    return DN_OK;
}

static dn_status check_inputs_finite(const dn_node *node)
{
    dn_status s = dn_check_finite(node->op->name, "prediction", node->in[0]);
    return s ? s : dn_check_finite(node->op->name, "target", node->in[1]);
}

/* Reduction, then finite values: the checks every loss starts with. */
static dn_status common_checks(const dn_node *node, int *red)
{
    dn_status s = get_reduction(node, red);
    return s ? s : check_inputs_finite(node);
}

static dn_status check_same_shape(const dn_node *node)
{
    if (!dn_same_shape(node->in[0], node->in[1]))
        return dn_error(DN_ERR_SHAPE, "prediction %s and target %s differ", dn_tshape(node->in[0]),
                        dn_tshape(node->in[1]));
    return DN_OK;
}

/* What mean divides by: the count of terms, or in a shard the whole batch's, per_sample terms for each of its
 * samples (per_sample * N = count when the shard is the whole batch, so one replica computes as none). */
static double mean_denominator(const dn_ctx *ctx, const dn_tensor *p, int64_t count, int64_t per_sample)
{
    if (!ctx->replica || p->ndim == 0) return (double)count;
    return (double)per_sample * (double)ctx->global_batch;
}

/* Terms per sample of an elementwise loss: one per element of a sample. */
static int64_t elements_per_sample(const dn_tensor *p)
{
    int64_t k = 1;
    for (int i = 1; i < p->ndim; i++) k *= p->shape[i];
    return k;
}

/* The loss tensor: 0-d for mean and sum, `terms` (ndim, shape) for none.  Reduces the terms in place; mean divides
 * by denom (mean_denominator). */
static dn_status finish(dn_ctx *ctx, dn_node *node, int red, int ndim, const int64_t *shape, const double *terms,
                        int64_t count, double denom)
{
    if (red == DN_REDUCE_NONE) {
        dn_tensor *y = dn_ctx_tensor(ctx, ndim, shape);
        if (!y) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < count; i++) y->data[i] = (float)terms[i];
        node->out = y;
        return DN_OK;
    }
    if (red == DN_REDUCE_MEAN && denom == 0)
        return dn_error(DN_ERR_SHAPE, "the mean of no terms is undefined (prediction %s is empty)",
                        dn_tshape(node->in[0]));
    double sum = 0;
    for (int64_t i = 0; i < count; i++) sum += terms[i];
    dn_tensor *y = dn_ctx_tensor(ctx, 0, NULL);
    if (!y) return DN_ERR_NOMEM;
    y->data[0] = (float)(red == DN_REDUCE_MEAN ? sum / denom : sum);
    node->out = y;
    return DN_OK;
}

/* d(loss)/d(term i): the incoming gradient of term i (none), or the single one shared by all terms,
 * divided by mean's denominator (mean_denominator) for mean. */
static inline double term_grad(const dn_node *node, int red, int64_t i, double denom)
{
    const float *g = node->out->grad;
    if (red == DN_REDUCE_NONE) return g[i];
    return red == DN_REDUCE_MEAN ? (double)g[0] / denom : (double)g[0];
}


/* ------------------------------------------------------------------ elementwise losses */

/* One term from prediction p and target t, or its derivative with respect to p. */
typedef double (*term_fn)(double p, double t, const double *attr);
/* Extra checks on the values of the inputs (labels, ranges); run after the shape and finite checks. */
typedef dn_status (*value_check_fn)(const dn_node *node);

static dn_status elementwise_forward(dn_ctx *ctx, dn_node *node, value_check_fn check, term_fn f)
{
    int red;
    dn_status s = check_same_shape(node);
    if (!s) s = common_checks(node, &red);
    if (!s && check) s = check(node);
    if (s) return s;
    dn_tensor *p = node->in[0], *t = node->in[1];
    int64_t n = dn_tensor_numel(p);
    const float *pd = dn_ctx_contig(ctx, p), *td = dn_ctx_contig(ctx, t);
    double *terms = dn_ctx_alloc(ctx, (size_t)(n ? n : 1) * sizeof(double));
    if (!pd || !td || !terms) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) terms[i] = f(pd[i], td[i], node->attr);
    return finish(ctx, node, red, p->ndim, p->shape, terms, n, mean_denominator(ctx, p, n, elements_per_sample(p)));
}

static dn_status elementwise_backward(dn_ctx *ctx, dn_node *node, term_fn df)
{
    dn_tensor *p = node->in[0], *t = node->in[1];
    if (!p->requires_grad) return DN_OK;
    int red = (int)node->attr[node->op->n_attrs - 1];
    int64_t n = dn_tensor_numel(p);
    const float *pd = dn_ctx_contig(ctx, p), *td = dn_ctx_contig(ctx, t);
    float *dp = dn_grad_buf(ctx, p);
    if (!pd || !td || !dp) return DN_ERR_NOMEM;
    const double denom = mean_denominator(ctx, p, n, elements_per_sample(p));
    for (int64_t i = 0; i < n; i++) dp[i] += (float)(term_grad(node, red, i, denom) * df(pd[i], td[i], node->attr));
    return DN_OK;
}

/* mse: (p - t)^2, slope 2 (p - t) */
static double mse_term(double p, double t, const double *a) { (void)a; return (p - t) * (p - t); }
static double mse_grad(double p, double t, const double *a) { (void)a; return 2 * (p - t); }

/* l1: |p - t|, slope sign(p - t) and 0 where p == t, as PyTorch */
static double l1_term(double p, double t, const double *a) { (void)a; return fabs(p - t); }
static double l1_grad(double p, double t, const double *a)
{
    (void)a;
    return p > t ? 1.0 : (p < t ? -1.0 : 0.0);
}

/* huber, d = p - t:  0.5 d^2 where |d| <= delta,  delta (|d| - 0.5 delta) beyond;  slope clamp(d, -delta, delta).
 * The pieces meet with equal slope at |d| = delta, so there is no kink there. */
static double huber_term(double p, double t, const double *a)
{
    double d = fabs(p - t), delta = a[0];
    return d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
}
static double huber_grad(double p, double t, const double *a) { return fmin(fmax(p - t, -a[0]), a[0]); }

/* bce: -(t log p + (1 - t) log(1 - p)), each log clamped at -100 as torch.nn.BCELoss, so p = 0 or 1 stays
 * finite.  Slope (p - t) / (p (1 - p)), the denominator kept >= 1e-12 as PyTorch does. */
static double bce_term(double p, double t, const double *a)
{
    (void)a;
    return -(t * fmax(log(p), -100.0) + (1 - t) * fmax(log1p(-p), -100.0));
}
static double bce_grad(double p, double t, const double *a)
{
    (void)a;
    return (p - t) / fmax(p * (1 - p), 1e-12);
}

/* bce_with_logits on a logit x: -(t log sigma(x) + (1 - t) log(1 - sigma(x)))
 *   = max(x, 0) - x t + log(1 + e^-|x|)     (never forms e^|x|, so exact for any finite x);
 * slope sigma(x) - t, sigma in its two-branch form for the same reason. */
static double bce_logits_term(double x, double t, const double *a)
{
    (void)a;
    return fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
}
static double bce_logits_grad(double x, double t, const double *a)
{
    (void)a;
    double s = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    return s - t;
}

/* hinge with labels t = +-1: max(0, 1 - t p); slope -t where 1 - t p >= 0.  At the kink itself (p = t) the
 * gradient passes, as torch.clamp(1 - t p, min=0) passes it at its bound. */
static double hinge_term(double p, double t, const double *a)
{
    (void)a;
    return fmax(0.0, 1 - t * p);
}
static double hinge_grad(double p, double t, const double *a)
{
    (void)a;
    return 1 - t * p >= 0 ? -t : 0.0;
}

/* Every element of input `input` must lie in [lo, hi]. */
static dn_status check_range(const dn_node *node, int input, const char *what, double lo, double hi)
{
    const dn_tensor *x = node->in[input];
    int64_t n = dn_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        float v = dn_tensor_get(x, i);
        if (v < lo || v > hi)
            return dn_error(DN_ERR_ARG, "%s %s must lie in [%g, %g]; flat index %lld holds %g", what, dn_tshape(x), lo,
                            hi, (long long)i, (double)v);
    }
    return DN_OK;
}

static dn_status huber_check(const dn_node *node)
{
    if (!(node->attr[0] > 0) || !isfinite(node->attr[0]))
        return dn_error(DN_ERR_ARG, "delta must be a positive number, got %g", node->attr[0]);
    return DN_OK;
}

static dn_status bce_check(const dn_node *node)
{
    dn_status s = check_range(node, 0, "prediction (probabilities)", 0, 1);
    return s ? s : check_range(node, 1, "target", 0, 1);
}

static dn_status hinge_check(const dn_node *node)
{
    const dn_tensor *t = node->in[1];
    int64_t n = dn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        float v = dn_tensor_get(t, i);
        if (v != 1.0f && v != -1.0f)
            return dn_error(DN_ERR_ARG, "target %s must hold labels -1 or +1; flat index %lld holds %g", dn_tshape(t),
                            (long long)i, (double)v);
    }
    return DN_OK;
}

static dn_status mse_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, NULL, mse_term); }
static dn_status mse_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, mse_grad); }
static dn_status l1_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, NULL, l1_term); }
static dn_status l1_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, l1_grad); }
static dn_status huber_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, huber_check, huber_term); }
static dn_status huber_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, huber_grad); }
static dn_status bce_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, bce_check, bce_term); }
static dn_status bce_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, bce_grad); }
static dn_status bce_logits_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, NULL, bce_logits_term); }
static dn_status bce_logits_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, bce_logits_grad); }
static dn_status hinge_fwd(dn_ctx *c, dn_node *n) { return elementwise_forward(c, n, hinge_check, hinge_term); }
static dn_status hinge_bwd(dn_ctx *c, dn_node *n) { return elementwise_backward(c, n, hinge_grad); }

/* ------------------------------------------------------------------ row-wise losses */

/* A prediction [N, C, d1, ...] seen as N x C x D (D = d1 * ...): sample s = (n, d) has its C class values
 * at n*C*D + k*D + d, k = 0 .. C-1.  S = N * D samples, each one term. */
typedef struct rows {
    int64_t n, c, d, samples;
} rows;

static inline int64_t at(const rows *r, int64_t s, int64_t k) { return (s / r->d) * r->c * r->d + k * r->d + s % r->d; }

/* Shapes for a row-wise loss.  index_target: the target holds one class index per sample, shape
 * [N, d1, ...]; otherwise it holds one value per class, the prediction's shape.  max_rank 2 admits only
 * [N, C]. */
static dn_status get_rows(const dn_node *node, bool index_target, int max_rank, rows *r)
{
    const dn_tensor *p = node->in[0], *t = node->in[1];
    if (p->ndim < 2 || p->ndim > max_rank)
        return dn_error(DN_ERR_SHAPE, "prediction %s must be %s", dn_tshape(p),
                        max_rank == 2 ? "[N, C]" : "[N, C] or [N, C, d1, ...]");
    r->n = p->shape[0];
    r->c = p->shape[1];
    r->d = 1;
    for (int i = 2; i < p->ndim; i++) r->d *= p->shape[i];
    r->samples = r->n * r->d;
    if (!index_target) return check_same_shape(node);
    /* expected target shape: the prediction's without the class axis */
    int64_t want[DN_MAX_DIMS];
    want[0] = p->shape[0];
    for (int i = 2; i < p->ndim; i++) want[i - 1] = p->shape[i];
    bool ok = t->ndim == p->ndim - 1;
    for (int i = 0; ok && i < t->ndim; i++) ok = t->shape[i] == want[i];
    if (!ok)
        return dn_error(DN_ERR_SHAPE, "prediction %s and target %s do not fit: class-index targets must be %s",
                        dn_tshape(p), dn_tshape(t), dn_shape_str(p->ndim - 1, want));
    return DN_OK;
}

/* Class indices are stored as floats: each must be an integer in [0, C). */
static dn_status check_classes(const rows *r, const float *td)
{
    for (int64_t s = 0; s < r->samples; s++) {
        float v = td[s];
        if (v != floorf(v) || v < 0 || v >= (float)r->c)
            return dn_error(DN_ERR_ARG, "target row %lld holds class index %g, not an integer in [0, %lld)",
                            (long long)s, (double)v, (long long)r->c);
    }
    return DN_OK;
}

/* The per-sample output shape for reduction none: the prediction's without axis 1. */
static void sample_shape(const dn_tensor *p, int *ndim, int64_t *shape)
{
    *ndim = p->ndim - 1;
    shape[0] = p->shape[0];
    for (int i = 2; i < p->ndim; i++) shape[i - 1] = p->shape[i];
}

/* Everything a row-wise forward needs: checked reduction and shapes, contiguous inputs, a term buffer. */
typedef struct row_setup {
    int red;
    rows r;
    const float *p, *t;
    double *terms;
} row_setup;

static dn_status row_begin(dn_ctx *ctx, dn_node *node, bool index_target, int max_rank, row_setup *su)
{
    dn_status s = get_rows(node, index_target, max_rank, &su->r);
    if (!s) s = common_checks(node, &su->red);
    if (s) return s;
    su->p = dn_ctx_contig(ctx, node->in[0]);
    su->t = dn_ctx_contig(ctx, node->in[1]);
    su->terms = dn_ctx_alloc(ctx, (size_t)(su->r.samples ? su->r.samples : 1) * sizeof(double));
    if (!su->p || !su->t || !su->terms) return DN_ERR_NOMEM;
    return index_target ? check_classes(&su->r, su->t) : DN_OK;
}

static dn_status row_finish(dn_ctx *ctx, dn_node *node, const row_setup *su)
{
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    sample_shape(node->in[0], &ndim, shape);
    return finish(ctx, node, su->red, ndim, shape, su->terms, su->r.samples,
                  mean_denominator(ctx, node->in[0], su->r.samples, su->r.d));
}

/* For backward: the layout again (shapes were checked in forward) and the prediction's gradient buffer. */
static float *row_grad_begin(dn_ctx *ctx, dn_node *node, rows *r, int *red)
{
    const dn_tensor *p = node->in[0];
    r->n = p->shape[0];
    r->c = p->shape[1];
    r->d = 1;
    for (int i = 2; i < p->ndim; i++) r->d *= p->shape[i];
    r->samples = r->n * r->d;
    *red = (int)node->attr[node->op->n_attrs - 1];
    return dn_grad_buf(ctx, node->in[0]);
}

/* softmax_cross_entropy: term = -log softmax(x)_y = logsumexp(x) - x_y.  The softmax is kept for backward:
 * dx_k = g (softmax_k - [k == y]).  The kernel (kernels/softmax.h) exponentiates each element once, in vectors,
 * on all the kernel threads, and forms logsumexp in double. */
static dn_status softmax_ce_forward(dn_ctx *ctx, dn_node *node, bool soft)
{
    row_setup su;
    dn_status s = row_begin(ctx, node, !soft, DN_MAX_DIMS, &su);
    if (s) return s;
    const rows *r = &su.r;
    float *prob = dn_ctx_alloc(ctx, (size_t)(r->samples * r->c + 1) * sizeof(float)); /* [N, C, D] softmax */
    if (!prob) return DN_ERR_NOMEM;
    /* soft targets: term = sum_k y_k (lse - x_k) */
    dn_xent_forward(su.p, su.t, soft, prob, su.terms, r->n, r->c, r->d);
    node->saved = prob;
    return row_finish(ctx, node, &su);
}

/* Soft targets: d/dx_k sum_j y_j (lse - x_j) = softmax_k sum_j y_j - y_k (targets need not sum to 1). */
static dn_status softmax_ce_backward(dn_ctx *ctx, dn_node *node, bool soft)
{
    if (!node->in[0]->requires_grad) return DN_OK;
    rows r;
    int red;
    float *dx = row_grad_begin(ctx, node, &r, &red);
    const float *t = dn_ctx_contig(ctx, node->in[1]), *prob = node->saved;
    if (!dx || !t) return DN_ERR_NOMEM;
    /* term_grad's rule: each sample's own gradient (none), or the one shared, divided by the count for mean */
    const double denom = mean_denominator(ctx, node->in[0], r.samples, r.d);
    const double scale = red == DN_REDUCE_MEAN && denom != 0 ? 1.0 / denom : 1.0;
    dn_xent_backward(prob, t, soft, node->out->grad, red == DN_REDUCE_NONE ? 1 : 0, scale, dx, r.n, r.c, r.d);
    return DN_OK;
}

static dn_status sce_fwd(dn_ctx *c, dn_node *n) { return softmax_ce_forward(c, n, false); }
static dn_status sce_bwd(dn_ctx *c, dn_node *n) { return softmax_ce_backward(c, n, false); }
static dn_status sce_soft_fwd(dn_ctx *c, dn_node *n) { return softmax_ce_forward(c, n, true); }
static dn_status sce_soft_bwd(dn_ctx *c, dn_node *n) { return softmax_ce_backward(c, n, true); }

/* nll: term = -logp_y; dlogp_y = -g */
static dn_status nll_fwd(dn_ctx *ctx, dn_node *node)
{
    row_setup su;
    dn_status s = row_begin(ctx, node, true, DN_MAX_DIMS, &su);
    if (s) return s;
    for (int64_t i = 0; i < su.r.samples; i++) su.terms[i] = -(double)su.p[at(&su.r, i, (int64_t)su.t[i])];
    return row_finish(ctx, node, &su);
}

static dn_status nll_bwd(dn_ctx *ctx, dn_node *node)
{
    if (!node->in[0]->requires_grad) return DN_OK;
    rows r;
    int red;
    float *dx = row_grad_begin(ctx, node, &r, &red);
    const float *t = dn_ctx_contig(ctx, node->in[1]);
    if (!dx || !t) return DN_ERR_NOMEM;
    const double denom = mean_denominator(ctx, node->in[0], r.samples, r.d);
    for (int64_t i = 0; i < r.samples; i++) dx[at(&r, i, (int64_t)t[i])] -= (float)term_grad(node, red, i, denom);
    return DN_OK;
}

/* cross_entropy_prob on probabilities p: term = -sum_k y_k log p_k, the log clamped at -100 as in BCE so
 * that p_k = 0 stays finite; dp_k = -g y_k / p_k, with p_k kept >= 1e-12. */
static dn_status ce_prob_fwd(dn_ctx *ctx, dn_node *node)
{
    row_setup su;
    dn_status s = row_begin(ctx, node, false, DN_MAX_DIMS, &su);
    if (!s) s = check_range(node, 0, "prediction (probabilities)", 0, 1);
    if (s) return s;
    for (int64_t i = 0; i < su.r.samples; i++) {
        double term = 0;
        for (int64_t k = 0; k < su.r.c; k++) {
            int64_t j = at(&su.r, i, k);
            term -= su.t[j] * fmax(log(su.p[j]), -100.0);
        }
        su.terms[i] = term;
    }
    return row_finish(ctx, node, &su);
}

static dn_status ce_prob_bwd(dn_ctx *ctx, dn_node *node)
{
    if (!node->in[0]->requires_grad) return DN_OK;
    rows r;
    int red;
    float *dp = row_grad_begin(ctx, node, &r, &red);
    const float *p = dn_ctx_contig(ctx, node->in[0]), *t = dn_ctx_contig(ctx, node->in[1]);
    if (!dp || !p || !t) return DN_ERR_NOMEM;
    const double denom = mean_denominator(ctx, node->in[0], r.samples, r.d);
    for (int64_t i = 0; i < r.samples; i++) {
        double g = term_grad(node, red, i, denom);
        for (int64_t k = 0; k < r.c; k++) {
            int64_t j = at(&r, i, k);
            dp[j] -= (float)(g * t[j] / fmax(p[j], 1e-12));
        }
    }
    return DN_OK;
}

/* multi_margin (torch.nn.MultiMarginLoss, p = 1): term_n = sum_{k != y} max(0, margin - x_y + x_k) / C.
 * Each active hinge (strictly positive, as PyTorch) adds g/C to x_k and takes g/C from x_y. */
static dn_status multi_margin_fwd(dn_ctx *ctx, dn_node *node)
{
    row_setup su;
    dn_status s = row_begin(ctx, node, true, 2, &su);
    if (!s && !isfinite(node->attr[0])) s = dn_error(DN_ERR_ARG, "margin must be finite, got %g", node->attr[0]);
    if (s) return s;
    const rows *r = &su.r;
    double margin = node->attr[0];
    for (int64_t i = 0; i < r->samples; i++) {
        int64_t y = (int64_t)su.t[i];
        double xy = su.p[at(r, i, y)], term = 0;
        for (int64_t k = 0; k < r->c; k++) {
            double z = margin - xy + su.p[at(r, i, k)];
            if (k != y && z > 0) term += z;
        }
        su.terms[i] = term / (double)r->c;
    }
    return row_finish(ctx, node, &su);
}

static dn_status multi_margin_bwd(dn_ctx *ctx, dn_node *node)
{
    if (!node->in[0]->requires_grad) return DN_OK;
    rows r;
    int red;
    float *dx = row_grad_begin(ctx, node, &r, &red);
    const float *p = dn_ctx_contig(ctx, node->in[0]), *t = dn_ctx_contig(ctx, node->in[1]);
    if (!dx || !p || !t) return DN_ERR_NOMEM;
    double margin = node->attr[0];
    const double denom = mean_denominator(ctx, node->in[0], r.samples, r.d);
    for (int64_t i = 0; i < r.samples; i++) {
        double g = term_grad(node, red, i, denom) / (double)r.c;
        int64_t y = (int64_t)t[i];
        double xy = p[at(&r, i, y)];
        for (int64_t k = 0; k < r.c; k++) {
            if (k == y || margin - xy + p[at(&r, i, k)] <= 0) continue;
            dx[at(&r, i, k)] += (float)g;
            dx[at(&r, i, y)] -= (float)g;
        }
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ gradient-check cases */

#define S34 2, {3, 4}
#define S234 3, {2, 3, 4}
#define S35 2, {3, 5}
#define S45 2, {4, 5}
#define S43 2, {4, 3}
#define S2322 4, {2, 3, 2, 2}
#define U(shape, lo, hi) {shape, DN_FILL_UNIFORM, lo, hi}

static const dn_case mse_cases[] = {
    {2, {U(S34, -2, 2), U(S34, -2, 2)}, NULL},
    {2, {U(S234, -1, 1), U(S234, -1, 1)}, "reduction=1"},
    {2, {U(S34, -2, 2), U(S34, -2, 2)}, "reduction=2"},
};
/* The kink p = t depends on the target, so the ranges keep p - t away from 0: above, then below. */
static const dn_case l1_cases[] = {
    {2, {U(S34, 0.5f, 2), U(S34, -1, 0)}, NULL},
    {2, {U(S234, -2, -0.5f), U(S234, 0, 1)}, "reduction=1"},
    {2, {U(S34, 0.5f, 2), U(S34, -1, 0)}, "reduction=2"},
};
/* p - t spans both pieces (|d| < delta and beyond) */
static const dn_case huber_cases[] = {
    {2, {U(S34, -3, 3), U(S34, -1, 1)}, NULL},
    {2, {U(S234, -2, 2), U(S234, -1, 1)}, "delta=0.5 reduction=1"},
    {2, {U(S34, -3, 3), U(S34, -1, 1)}, "delta=2 reduction=2"},
};
static const dn_case ce_prob_cases[] = {
    {2, {{2, {4, 3}, DN_FILL_PROB, 0, 0}, {2, {4, 3}, DN_FILL_PROB, 0, 0}}, NULL},
    {2, {{2, {4, 3}, DN_FILL_PROB, 0, 0}, {2, {4, 3}, DN_FILL_PROB, 0, 0}}, "reduction=1"},
    {2, {{2, {3, 5}, DN_FILL_PROB, 0, 0}, U(S35, 0, 1)}, "reduction=2"},
};
static const dn_case bce_cases[] = {
    {2, {U(S34, 0.05f, 0.95f), {S34, DN_FILL_BINARY, 0, 1}}, NULL},
    {2, {U(S234, 0.05f, 0.95f), U(S234, 0, 1)}, "reduction=1"},
    {2, {U(S34, 0.05f, 0.95f), U(S34, 0, 1)}, "reduction=2"},
};
static const dn_case bce_logits_cases[] = {
    {2, {U(S34, -4, 4), U(S34, 0, 1)}, NULL},
    {2, {U(S234, -4, 4), {S234, DN_FILL_BINARY, 0, 1}}, "reduction=1"},
    {2, {U(S34, -4, 4), {S34, DN_FILL_BINARY, 0, 1}}, "reduction=2"},
};
/* with labels +-1 the kink 1 - t p = 0 sits at p = +-1 whatever the label, so it is listed as a kink */
static const dn_case hinge_cases[] = {
    {2, {U(S34, -3, 3), {S34, DN_FILL_SIGN, -1, 1}}, NULL},
    {2, {U(S234, -3, 3), {S234, DN_FILL_SIGN, -1, 1}}, "reduction=1"},
    {2, {U(S34, -3, 3), {S34, DN_FILL_SIGN, -1, 1}}, "reduction=2"},
};
/* The kinks x_y - x_k = margin depend on the target, so: with values in [-0.3, 0.3] every hinge of margin 1
 * is active (x_y - x_k <= 0.6 < 1); with margin -1 every hinge is inactive (zero gradient); the mixed case
 * (margin 0.5, values in [-1, 1]) has its differences, for the check's fixed seeds, at least 0.02 away
 * from the margin (0.027 at the closest), well outside the finite-difference step. */
static const dn_case multi_margin_cases[] = {
    {2, {U(S45, -0.3f, 0.3f), {1, {4}, DN_FILL_CLASS, 0, 5}}, NULL},
    {2, {U(S34, -1, 1), {1, {3}, DN_FILL_CLASS, 0, 4}}, "margin=0.5 reduction=1"},
    {2, {U(S34, -0.3f, 0.3f), {1, {3}, DN_FILL_CLASS, 0, 4}}, "margin=-1 reduction=1"},
    {2, {U(S43, -0.3f, 0.3f), {1, {4}, DN_FILL_CLASS, 0, 3}}, "margin=2 reduction=2"},
};
static const dn_case sce_cases[] = {
    {2, {U(S45, -3, 3), {1, {4}, DN_FILL_CLASS, 0, 5}}, NULL},
    {2, {U(S234, -3, 3), {2, {2, 4}, DN_FILL_CLASS, 0, 3}}, "reduction=1"},
    {2, {U(S45, -3, 3), {1, {4}, DN_FILL_CLASS, 0, 5}}, "reduction=2"},
    {2, {U(S2322, -3, 3), {3, {2, 2, 2}, DN_FILL_CLASS, 0, 3}}, "reduction=2"},
};
static const dn_case sce_soft_cases[] = {
    {2, {U(S45, -3, 3), {2, {4, 5}, DN_FILL_PROB, 0, 0}}, NULL},
    {2, {U(S45, -3, 3), {2, {4, 5}, DN_FILL_PROB, 0, 0}}, "reduction=1"},
    /* rows of the target sum to 1 along the last axis here, not the class axis: the gradient must not
     * assume they sum to 1 */
    {2, {U(S234, -3, 3), {S234, DN_FILL_PROB, 0, 0}}, "reduction=2"},
};
static const dn_case nll_cases[] = {
    {2, {U(S45, -3, -0.1f), {1, {4}, DN_FILL_CLASS, 0, 5}}, NULL},
    {2, {U(S234, -3, -0.1f), {2, {2, 4}, DN_FILL_CLASS, 0, 3}}, "reduction=1"},
    {2, {U(S45, -3, -0.1f), {1, {4}, DN_FILL_CLASS, 0, 5}}, "reduction=2"},
};

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
#define CASES(a) .cases = a, .n_cases = N(a)
/* inputs 0 and 1, the target takes no gradient */
#define LOSS .flags = DN_OPF_LOSS, .arity = 2, .nondiff = 2

const dn_op dn_ops_loss[] = {
    {.name = "mse_loss", LOSS, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = mse_fwd, .backward = mse_bwd, .doc = "mean of (p - t)^2 (torch.nn.MSELoss)", CASES(mse_cases)},
    {.name = "l1_loss", LOSS, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = l1_fwd, .backward = l1_bwd, .doc = "mean of |p - t| (torch.nn.L1Loss)", CASES(l1_cases)},
    {.name = "huber_loss", LOSS, .n_attrs = 2, .attr_names = {"delta", "reduction"},
     .attr_defaults = {1, DN_REDUCE_MEAN}, .forward = huber_fwd, .backward = huber_bwd,
     .doc = "mean of 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta), d = p - t (torch.nn.HuberLoss)",
     CASES(huber_cases)},
    {.name = "cross_entropy_prob", LOSS, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = ce_prob_fwd, .backward = ce_prob_bwd,
     .doc = "mean over rows of -sum_c y_c log p_c, p probabilities (-(y * torch.log(p)).sum(1).mean())",
     CASES(ce_prob_cases)},
    {.name = "bce_loss", LOSS, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = bce_fwd, .backward = bce_bwd,
     .doc = "mean of -(t log p + (1 - t) log(1 - p)), logs clamped at -100 (torch.nn.BCELoss)", CASES(bce_cases)},
    {.name = "bce_with_logits", LOSS, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = bce_logits_fwd, .backward = bce_logits_bwd,
     .doc = "mean of max(x, 0) - x t + log(1 + e^-|x|) (torch.nn.BCEWithLogitsLoss)", CASES(bce_logits_cases)},
    {.name = "hinge_loss", LOSS, .target = DN_TARGET_SIGN, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = hinge_fwd, .backward = hinge_bwd,
     .doc = "mean of max(0, 1 - t p), t = +-1 (torch.clamp(1 - t * p, min=0).mean())", CASES(hinge_cases),
     .kinks = {-1, 1}, .n_kinks = 2},
    {.name = "multi_margin_loss", LOSS, .target = DN_TARGET_INDEX, .n_attrs = 2, .attr_names = {"margin", "reduction"},
     .attr_defaults = {1, DN_REDUCE_MEAN}, .forward = multi_margin_fwd, .backward = multi_margin_bwd,
     .doc = "mean over rows of sum_{k != y} max(0, margin - x_y + x_k) / C (torch.nn.MultiMarginLoss)",
     CASES(multi_margin_cases)},
    {.name = "softmax_cross_entropy", LOSS, .target = DN_TARGET_INDEX, .n_attrs = 1, .attr_names = {"reduction"},
     .attr_defaults = {DN_REDUCE_MEAN}, .forward = sce_fwd, .backward = sce_bwd,
     .doc = "mean over samples of logsumexp(x) - x_y, classes on axis 1 (torch.nn.CrossEntropyLoss)",
     CASES(sce_cases)},
    {.name = "softmax_cross_entropy_soft", LOSS, .n_attrs = 1, .attr_names = {"reduction"},
     .attr_defaults = {DN_REDUCE_MEAN}, .forward = sce_soft_fwd, .backward = sce_soft_bwd,
     .doc = "mean over samples of -sum_c y_c log softmax(x)_c (torch.nn.CrossEntropyLoss, probability targets)",
     CASES(sce_soft_cases)},
    {.name = "nll_loss", LOSS, .target = DN_TARGET_INDEX, .n_attrs = 1, .attr_names = {"reduction"}, .attr_defaults = {DN_REDUCE_MEAN},
     .forward = nll_fwd, .backward = nll_bwd, .doc = "mean over samples of -logp_y (torch.nn.NLLLoss)",
     CASES(nll_cases)},
    {0},
};

/* ------------------------------------------------------------------ public wrappers */

static dn_tensor *loss(dn_ctx *ctx, const char *name, dn_tensor *pred, dn_tensor *target, int reduction)
{
    dn_tensor *in[] = {pred, target};
    double a[] = {reduction};
    return dn_apply(ctx, name, 2, in, a);
}

/* losses with one attribute before `reduction` */
static dn_tensor *loss_with(dn_ctx *ctx, const char *name, dn_tensor *pred, dn_tensor *target, float attr,
                            int reduction)
{
    dn_tensor *in[] = {pred, target};
    double a[] = {attr, reduction};
    return dn_apply(ctx, name, 2, in, a);
}

dn_tensor *dn_mse_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction)
{
    return loss(ctx, "mse_loss", pred, target, reduction);
}

dn_tensor *dn_l1_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction)
{
    return loss(ctx, "l1_loss", pred, target, reduction);
}

dn_tensor *dn_huber_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, float delta, int reduction)
{
    return loss_with(ctx, "huber_loss", pred, target, delta, reduction);
}

dn_tensor *dn_cross_entropy_prob(dn_ctx *ctx, dn_tensor *prob, dn_tensor *target, int reduction)
{
    return loss(ctx, "cross_entropy_prob", prob, target, reduction);
}

dn_tensor *dn_bce_loss(dn_ctx *ctx, dn_tensor *prob, dn_tensor *target, int reduction)
{
    return loss(ctx, "bce_loss", prob, target, reduction);
}

dn_tensor *dn_bce_with_logits(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction)
{
    return loss(ctx, "bce_with_logits", logits, target, reduction);
}

dn_tensor *dn_hinge_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction)
{
    return loss(ctx, "hinge_loss", pred, target, reduction);
}

dn_tensor *dn_multi_margin_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, float margin, int reduction)
{
    return loss_with(ctx, "multi_margin_loss", pred, target, margin, reduction);
}

dn_tensor *dn_softmax_cross_entropy(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction)
{
    return loss(ctx, "softmax_cross_entropy", logits, target, reduction);
}

dn_tensor *dn_softmax_cross_entropy_soft(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction)
{
    return loss(ctx, "softmax_cross_entropy_soft", logits, target, reduction);
}

dn_tensor *dn_nll_loss(dn_ctx *ctx, dn_tensor *logp, dn_tensor *target, int reduction)
{
    return loss(ctx, "nll_loss", logp, target, reduction);
}
