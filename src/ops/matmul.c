/* Matrix products: matmul (batched, broadcasting) and linear (x Wᵀ + b, the dense layer's op).
 * Both hand their arithmetic to dn_sgemm; gradients are gemms too:
 *     C = A B   =>   dA += dC Bᵀ,   dB += Aᵀ dC. */
#include "internal.h"

/* ------------------------------------------------------------------ matmul */

typedef struct mm_plan {
    int nb;                          /* batch rank */
    int64_t batch[DN_MAX_DIMS];      /* broadcast batch shape */
    int64_t sa[DN_MAX_DIMS], sb[DN_MAX_DIMS]; /* batch strides (in matrices) of a and b, 0 when broadcast */
    int64_t nbatch, M, K, N;
} mm_plan;

static dn_status plan_matmul(const dn_tensor *a, const dn_tensor *b, mm_plan *p)
{
    if (a->ndim < 2 || b->ndim < 2)
        return dn_error(DN_ERR_SHAPE, "inputs need at least 2 dimensions, got %s and %s (reshape vectors to [1, n] or [n, 1])",
                        dn_tshape(a), dn_tshape(b));
    p->M = a->shape[a->ndim - 2];
    p->K = a->shape[a->ndim - 1];
    p->N = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != p->K)
        return dn_error(DN_ERR_SHAPE, "%s x %s: inner dimensions %lld and %lld differ", dn_tshape(a), dn_tshape(b),
                        (long long)p->K, (long long)b->shape[b->ndim - 2]);
    int na = a->ndim - 2, nbt = b->ndim - 2;
    p->nb = na > nbt ? na : nbt;
    int64_t ca[DN_MAX_DIMS], cb[DN_MAX_DIMS];
    dn_contiguous_strides(na, a->shape, ca);
    dn_contiguous_strides(nbt, b->shape, cb);
    for (int i = 0; i < p->nb; i++) {
        int ia = i - (p->nb - na), ib = i - (p->nb - nbt);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return dn_error(DN_ERR_SHAPE, "batch dimensions of %s and %s do not broadcast", dn_tshape(a), dn_tshape(b));
        p->batch[i] = da == 1 ? db : da;
        p->sa[i] = (ia >= 0 && da != 1) ? ca[ia] : 0;
        p->sb[i] = (ib >= 0 && db != 1) ? cb[ib] : 0;
    }
    p->nbatch = dn_shape_numel(p->nb, p->batch);
    return DN_OK;
}

/* matrix offsets (in units of whole matrices) of batch element k */
static void batch_offsets(const mm_plan *p, int64_t k, int64_t *oa, int64_t *ob)
{
    *oa = *ob = 0;
    for (int i = p->nb - 1; i >= 0; i--) {
        int64_t idx = k % p->batch[i];
        k /= p->batch[i];
        *oa += idx * p->sa[i];
        *ob += idx * p->sb[i];
    }
}

static dn_status matmul_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *a = node->in[0], *b = node->in[1];
    mm_plan p;
    dn_status s = plan_matmul(a, b, &p);
    if (s) return s;
    int64_t shape[DN_MAX_DIMS];
    for (int i = 0; i < p.nb; i++) shape[i] = p.batch[i];
    shape[p.nb] = p.M;
    shape[p.nb + 1] = p.N;
    if (p.nb + 2 > DN_MAX_DIMS) return dn_error(DN_ERR_SHAPE, "result would have too many dimensions");
    dn_tensor *y = dn_ctx_tensor(ctx, p.nb + 2, shape);
    const float *ad = dn_ctx_contig(ctx, a), *bd = dn_ctx_contig(ctx, b);
    if (!y || !ad || !bd) return DN_ERR_NOMEM;
    if (b->ndim == 2 && a->ndim == p.nb + 2) {
        /* a shared right side: fold the batch into the rows, one big gemm */
        dn_sgemm(false, false, p.nbatch * p.M, p.N, p.K, 1.0f, ad, p.K, bd, p.N, 0.0f, y->data, p.N);
    } else {
        for (int64_t k = 0; k < p.nbatch; k++) {
            int64_t oa, ob;
            batch_offsets(&p, k, &oa, &ob);
            dn_sgemm(false, false, p.M, p.N, p.K, 1.0f, ad + oa * p.M * p.K, p.K, bd + ob * p.K * p.N, p.N, 0.0f,
                     y->data + k * p.M * p.N, p.N);
        }
    }
    node->saved = dn_ctx_alloc(ctx, 2 * sizeof(float *));
    if (!node->saved) return DN_ERR_NOMEM;
    ((const float **)node->saved)[0] = ad;
    ((const float **)node->saved)[1] = bd;
    node->out = y;
    return DN_OK;
}

static dn_status matmul_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *a = node->in[0], *b = node->in[1], *y = node->out;
    mm_plan p;
    dn_status s = plan_matmul(a, b, &p);
    if (s) return s;
    const float *ad = ((const float **)node->saved)[0], *bd = ((const float **)node->saved)[1];
    float *da = a->requires_grad ? dn_grad_buf(ctx, a) : NULL;
    float *db = b->requires_grad ? dn_grad_buf(ctx, b) : NULL;
    if ((a->requires_grad && !da) || (b->requires_grad && !db)) return DN_ERR_NOMEM;
    const float *dy = y->grad;
    if (b->ndim == 2 && a->ndim == p.nb + 2) {
        int64_t R = p.nbatch * p.M;
        if (da) dn_sgemm(false, true, R, p.K, p.N, 1.0f, dy, p.N, bd, p.N, 1.0f, da, p.K);
        if (db) dn_sgemm(true, false, p.K, p.N, R, 1.0f, ad, p.K, dy, p.N, 1.0f, db, p.N);
        return DN_OK;
    }
    /* batch by batch, in order: broadcast inputs accumulate their share deterministically */
    for (int64_t k = 0; k < p.nbatch; k++) {
        int64_t oa, ob;
        batch_offsets(&p, k, &oa, &ob);
        const float *dyk = dy + k * p.M * p.N;
        if (da)
            dn_sgemm(false, true, p.M, p.K, p.N, 1.0f, dyk, p.N, bd + ob * p.K * p.N, p.N, 1.0f, da + oa * p.M * p.K, p.K);
        if (db)
            dn_sgemm(true, false, p.K, p.N, p.M, 1.0f, ad + oa * p.M * p.K, p.K, dyk, p.N, 1.0f, db + ob * p.K * p.N, p.N);
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ linear */

static dn_status linear_fwd(dn_ctx *ctx, dn_node *node)
{
    if (node->n_in != 2 && node->n_in != 3)
        return dn_error(DN_ERR_ARG, "takes (x, weight) or (x, weight, bias), got %d inputs", node->n_in);
    dn_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in == 3 ? node->in[2] : NULL;
    if (w->ndim != 2) return dn_error(DN_ERR_SHAPE, "weight must be [out, in], got %s", dn_tshape(w));
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != in_f)
        return dn_error(DN_ERR_SHAPE, "input %s does not end in %lld features (weight %s)", dn_tshape(x),
                        (long long)in_f, dn_tshape(w));
    if (b && (b->ndim != 1 || b->shape[0] != out_f))
        return dn_error(DN_ERR_SHAPE, "bias must be [%lld], got %s", (long long)out_f, dn_tshape(b));
    int64_t shape[DN_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out_f;
    dn_tensor *y = dn_ctx_tensor(ctx, x->ndim, shape);
    const float *xd = dn_ctx_contig(ctx, x), *wd = dn_ctx_contig(ctx, w), *bd = b ? dn_ctx_contig(ctx, b) : NULL;
    if (!y || !xd || !wd || (b && !bd)) return DN_ERR_NOMEM;
    int64_t R = dn_tensor_numel(x) / (in_f ? in_f : 1);
    if (in_f == 0) R = dn_tensor_numel(y) / (out_f ? out_f : 1);
    if (bd) {
        for (int64_t r = 0; r < R; r++) memcpy(y->data + r * out_f, bd, (size_t)out_f * sizeof(float));
    }
    /* y[R, out] = x[R, in] · W[out, in]ᵀ (+ the bias already in y), then the ReLU if fused */
    dn_sgemm_ex(false, true, R, out_f, in_f, 1.0f, xd, in_f, wd, in_f, bd ? 1.0f : 0.0f, y->data, out_f,
                (node->op->flags & DN_OPF_RELU) ? DN_GEMM_RELU : DN_GEMM_NONE);
    node->saved = dn_ctx_alloc(ctx, 2 * sizeof(float *));
    if (!node->saved) return DN_ERR_NOMEM;
    ((const float **)node->saved)[0] = xd;
    ((const float **)node->saved)[1] = wd;
    node->out = y;
    return DN_OK;
}

static dn_status linear_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *x = node->in[0], *w = node->in[1], *b = node->n_in == 3 ? node->in[2] : NULL, *y = node->out;
    const float *xd = ((const float **)node->saved)[0], *wd = ((const float **)node->saved)[1];
    int64_t out_f = w->shape[0], in_f = w->shape[1];
    int64_t R = dn_tensor_numel(y) / (out_f ? out_f : 1);
    /* a fused ReLU: dy becomes the gradient of the pre-activation, in place (nothing reads y's gradient after
     * this node's backward step) */
    if (node->op->flags & DN_OPF_RELU) dn_relu_mask_grad(y->grad, y->data, dn_tensor_numel(y));
    const float *dy = y->grad;
    if (x->requires_grad) {
        float *dx = dn_grad_buf(ctx, x);
        if (!dx) return DN_ERR_NOMEM;
        dn_sgemm(false, false, R, in_f, out_f, 1.0f, dy, out_f, wd, in_f, 1.0f, dx, in_f); /* dx += dy W */
    }
    if (w->requires_grad) {
        float *dw = dn_grad_buf(ctx, w);
        if (!dw) return DN_ERR_NOMEM;
        dn_sgemm(true, false, out_f, in_f, R, 1.0f, dy, out_f, xd, in_f, 1.0f, dw, in_f); /* dW += dyᵀ x */
    }
    if (b && b->requires_grad) {
        float *dbias = dn_grad_buf(ctx, b);
        if (!dbias) return DN_ERR_NOMEM;
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < out_f; j++) dbias[j] += dy[r * out_f + j];
    }
    return DN_OK;
}

static const dn_case matmul_cases[] = {
    {2, {{2, {3, 4}, DN_FILL_UNIFORM, -1, 1}, {2, {4, 5}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -1, 1}, {3, {2, 4, 2}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -1, 1}, {2, {4, 2}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{2, {3, 4}, DN_FILL_UNIFORM, -1, 1}, {3, {2, 4, 2}, DN_FILL_UNIFORM, -1, 1}}, NULL},
};
static const dn_case linear_cases[] = {
    {3, {{2, {4, 5}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 5}, DN_FILL_UNIFORM, -1, 1}, {1, {3}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{3, {2, 2, 5}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 5}, DN_FILL_UNIFORM, -1, 1}}, NULL},
};
static const dn_case linear_relu_cases[] = {
    {3, {{2, {4, 5}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 5}, DN_FILL_UNIFORM, -1, 1}, {1, {3}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{3, {2, 2, 5}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 5}, DN_FILL_UNIFORM, -1, 1}}, NULL},
};

const dn_op dn_ops_matmul[] = {
    {.name = "matmul", .arity = 2, .forward = matmul_fwd, .backward = matmul_bwd,
     .doc = "y = a b over the last two axes, batch axes broadcast; torch.matmul", .cases = matmul_cases, .n_cases = 4},
    {.name = "linear", .arity = -1, .forward = linear_fwd, .backward = linear_bwd,
     .doc = "y = x Wᵀ + b (b optional); torch.nn.functional.linear", .cases = linear_cases, .n_cases = 2},
    {.name = "linear_relu", .flags = DN_OPF_RELU, .arity = -1, .forward = linear_fwd, .backward = linear_bwd,
     .doc = "y = relu(x Wᵀ + b), linear with the ReLU in the gemm's write-back and the gradient masked in backward "
            "(bit for bit linear then relu, one pass over y)",
     .cases = linear_relu_cases, .n_cases = 2},
    {0},
};

dn_tensor *dn_matmul(dn_ctx *ctx, dn_tensor *a, dn_tensor *b)
{
    dn_tensor *in[] = {a, b};
    return dn_apply(ctx, "matmul", 2, in, NULL);
}

dn_tensor *dn_linear(dn_ctx *ctx, dn_tensor *x, dn_tensor *w, dn_tensor *b)
{
    dn_tensor *in[] = {x, w, b};
    return dn_apply(ctx, "linear", b ? 3 : 2, in, NULL);
}
