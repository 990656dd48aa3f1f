/* Recurrent building blocks: embedding lookup and one time step of a vanilla RNN, an LSTM and a GRU, with
 * PyTorch's equations and gate order so that weights move between the two unchanged.
 *
 * A cell takes the input's projection for this step, xw = x W_ihᵀ + b_ih, already computed: the sequence
 * code (src/nn/rnn.c) projects all T steps at once with one `linear`, which is one big gemm instead of T
 * small ones.  The cell then does the recurrent half: one gemm h W_hhᵀ, and one fused pass over the gates.
 *
 * Every cell takes a mask [N] of 0s and 1s: a row with mask 0 is a padding step of a shorter sequence and
 * keeps its state (h' = h, c' = c), so a batch of uneven sequences runs as one, and the state after the last
 * step is each sequence's state at its own last valid step.  Gradients follow: a masked row passes dh' (and
 * dc') straight through to dh (dc) and gives nothing to xw or the weights.
 *
 * An op has one output, so the LSTM cell returns [h' | c'] side by side along the last axis: [N, 2H]. */
#include "internal.h"
#include "kernels/vmath.h"

#include <math.h>

/* ------------------------------------------------------------------ embedding */

/* Row lookup, as torch.nn.functional.embedding: y[..., :] = weight[indices[...], :].  The indices are floats
 * holding integers (the library has one element type); a non-integer or out-of-range index is an error. */
static dn_status embedding_fwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *idx = node->in[0], *w = node->in[1];
    if (w->ndim != 2) return dn_error(DN_ERR_SHAPE, "weight must be [V, E], got %s", dn_tshape(w));
    if (idx->ndim >= DN_MAX_DIMS)
        return dn_error(DN_ERR_SHAPE, "indices %s have too many dimensions (at most %d)", dn_tshape(idx),
                        DN_MAX_DIMS - 1);
    int64_t vocab = w->shape[0], dim = w->shape[1], n = dn_tensor_numel(idx);
    int64_t *rows = dn_ctx_alloc(ctx, (size_t)(n ? n : 1) * sizeof(int64_t));
    if (!rows) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        float v = dn_tensor_get(idx, i);
        if (!(v >= 0 && v < (float)vocab) || v != floorf(v))
            return dn_error(DN_ERR_ARG, "index %g at flat position %lld is not a row of weight %s (need an integer "
                                        "in [0, %lld))", (double)v, (long long)i, dn_tshape(w), (long long)vocab);
        rows[i] = (int64_t)v;
    }
    int64_t shape[DN_MAX_DIMS];
    for (int i = 0; i < idx->ndim; i++) shape[i] = idx->shape[i];
    shape[idx->ndim] = dim;
    dn_tensor *y = dn_ctx_tensor(ctx, idx->ndim + 1, shape);
    if (!y) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++)
        for (int64_t e = 0; e < dim; e++) y->data[i * dim + e] = w->data[rows[i] * w->stride[0] + e * w->stride[1]];
    node->saved = rows;
    node->out = y;
    return DN_OK;
}

/* dW[row] += dy for every lookup of that row (a row used twice gets both gradients). */
static dn_status embedding_bwd(dn_ctx *ctx, dn_node *node)
{
    dn_tensor *w = node->in[1], *y = node->out;
    if (!w->requires_grad) return DN_OK;
    float *dw = dn_grad_buf(ctx, w);
    if (!dw) return DN_ERR_NOMEM;
    const int64_t *rows = node->saved;
    int64_t dim = w->shape[1], n = dn_tensor_numel(node->in[0]);
    for (int64_t i = 0; i < n; i++)
        for (int64_t e = 0; e < dim; e++) dw[rows[i] * dim + e] += y->grad[i * dim + e];
    return DN_OK;
}

/* ------------------------------------------------------------------ shared by the cells */

enum { RNN_TANH = 0, RNN_RELU = 1 };

/* What a cell's backward needs.  Inputs are kept as rows with a leading dimension (ld: floats from one row
 * to the next), so the column slices the sequence code hands in (step t of xw, the h half of an LSTM's
 * [h | c]) are read where they lie instead of being copied every step. */
typedef struct cell_saved {
    const float *h, *c;      /* [N, H] states as forward read them (c: LSTM only) */
    int64_t ldh, ldc;
    const float *w, *mask;   /* w_hh [G*H, H] contiguous, mask [N] */
    float *act;              /* [N, G*H]: LSTM i f g o and RNN h' after their activations; GRU r z n */
    float *extra;            /* LSTM: tanh(c') [N, H]; GRU: h W_hhᵀ + b_hh [N, 3H] */
    int64_t n, hidden, gates;
} cell_saved;

/* A 2-D tensor as rows: its own data when each row is contiguous, else a contiguous copy. */
static const float *rows_of(dn_ctx *ctx, const dn_tensor *t, int64_t *ld)
{
    if (t->stride[1] == 1 && t->stride[0] >= t->shape[1]) {
        *ld = t->stride[0];
        return t->data;
    }
    *ld = t->shape[1];
    return dn_ctx_contig(ctx, t);
}

/* Checks a cell's inputs: xw [N, G*H], state(s) [N, H], w_hh [G*H, H], b_hh [G*H], mask [N] of 0/1.
 * `names` lists the inputs in order for the messages. */
static dn_status cell_check(const dn_node *node, int gates, int n_state, const char *const *names)
{
    const dn_tensor *xw = node->in[0], *h = node->in[1];
    if (h->ndim != 2) return dn_error(DN_ERR_SHAPE, "h must be [N, H], got %s", dn_tshape(h));
    int64_t n = h->shape[0], hid = h->shape[1], gh = (int64_t)gates * hid;
    for (int k = 1; k < 1 + n_state; k++)
        if (node->in[k]->ndim != 2 || node->in[k]->shape[0] != n || node->in[k]->shape[1] != hid)
            return dn_error(DN_ERR_SHAPE, "%s must be [%lld, %lld] like h, got %s", names[k], (long long)n,
                            (long long)hid, dn_tshape(node->in[k]));
    if (xw->ndim != 2 || xw->shape[0] != n || xw->shape[1] != gh)
        return dn_error(DN_ERR_SHAPE, "xw must be [N, %d*H] = [%lld, %lld] for h %s, got %s", gates, (long long)n,
                        (long long)gh, dn_tshape(h), dn_tshape(xw));
    const dn_tensor *w = node->in[1 + n_state], *b = node->in[2 + n_state], *m = node->in[3 + n_state];
    if (w->ndim != 2 || w->shape[0] != gh || w->shape[1] != hid)
        return dn_error(DN_ERR_SHAPE, "w_hh must be [%d*H, H] = [%lld, %lld] for h %s, got %s", gates, (long long)gh,
                        (long long)hid, dn_tshape(h), dn_tshape(w));
    if (b->ndim != 1 || b->shape[0] != gh)
        return dn_error(DN_ERR_SHAPE, "b_hh must be [%lld], got %s", (long long)gh, dn_tshape(b));
    if (m->ndim != 1 || m->shape[0] != n)
        return dn_error(DN_ERR_SHAPE, "mask must be [N] = [%lld], got %s", (long long)n, dn_tshape(m));
    for (int64_t r = 0; r < n; r++) {
        float v = m->data[r * m->stride[0]];
        if (v != 0.0f && v != 1.0f)
            return dn_error(DN_ERR_ARG, "mask must hold 0 (padding: keep the state) or 1 (step), got %g in row %lld",
                            (double)v, (long long)r);
    }
    return DN_OK;
}

/* Reads the inputs and computes the recurrent half of every gate, for all gates and rows in one gemm:
 *     pre = b_hh + h W_hhᵀ   [N, G*H]
 * into sv->act (the cells turn it into activations in place) or, for the GRU, which keeps it, sv->extra. */
static dn_status cell_begin(dn_ctx *ctx, dn_node *node, int gates, int n_state, cell_saved **out, float **pre)
{
    cell_saved *sv = dn_ctx_calloc(ctx, sizeof *sv);
    if (!sv) return DN_ERR_NOMEM;
    const dn_tensor *h = node->in[1];
    sv->n = h->shape[0];
    sv->hidden = h->shape[1];
    sv->gates = gates;
    int64_t gh = sv->gates * sv->hidden;
    sv->h = rows_of(ctx, h, &sv->ldh);
    sv->c = n_state == 2 ? rows_of(ctx, node->in[2], &sv->ldc) : NULL;
    sv->w = dn_ctx_contig(ctx, node->in[1 + n_state]);
    const float *b = dn_ctx_contig(ctx, node->in[2 + n_state]);
    sv->mask = dn_ctx_contig(ctx, node->in[3 + n_state]);
    sv->act = dn_ctx_alloc(ctx, (size_t)(sv->n * gh + 1) * sizeof(float));
    float *p = gates == 3 ? dn_ctx_alloc(ctx, (size_t)(sv->n * gh + 1) * sizeof(float)) : sv->act;
    if (!sv->h || (n_state == 2 && !sv->c) || !sv->w || !b || !sv->mask || !sv->act || !p) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < sv->n; r++) memcpy(p + r * gh, b, (size_t)gh * sizeof(float));
    dn_sgemm(false, true, sv->n, gh, sv->hidden, 1.0f, sv->h, sv->ldh, sv->w, sv->hidden, 1.0f, p, gh);
    if (gates == 3) sv->extra = p;
    *out = sv;
    *pre = p;
    return DN_OK;
}

/* The weight gradients and dh from the gradient of the recurrent half, dpre [N, G*H]:
 *     pre = b_hh + h W_hhᵀ   =>   db_hh += Σ_rows dpre,  dW_hh += dpreᵀ h,  dh += dpre W_hh.
 * Rows of masked steps hold 0 in dpre, so they add nothing. */
static dn_status cell_end(dn_ctx *ctx, dn_node *node, const cell_saved *sv, int n_state, const float *dpre)
{
    int64_t n = sv->n, hid = sv->hidden, gh = sv->gates * hid;
    dn_tensor *h = node->in[1], *w = node->in[1 + n_state], *b = node->in[2 + n_state];
    if (w->requires_grad) {
        float *dw = dn_grad_buf(ctx, w);
        if (!dw) return DN_ERR_NOMEM;
        dn_sgemm(true, false, gh, hid, n, 1.0f, dpre, gh, sv->h, sv->ldh, 1.0f, dw, hid);
    }
    if (b->requires_grad) {
        float *db = dn_grad_buf(ctx, b);
        if (!db) return DN_ERR_NOMEM;
        for (int64_t r = 0; r < n; r++)
            for (int64_t j = 0; j < gh; j++) db[j] += dpre[r * gh + j];
    }
    if (h->requires_grad) {
        float *dh = dn_grad_buf(ctx, h);
        if (!dh) return DN_ERR_NOMEM;
        dn_sgemm(false, false, n, hid, gh, 1.0f, dpre, gh, sv->w, hid, 1.0f, dh, hid);
    }
    return DN_OK;
}

/* dxw += the gradient of the gates' pre-activations (xw enters every gate as a plain sum). */
static dn_status add_dxw(dn_ctx *ctx, dn_tensor *xw, const float *dgate, int64_t count)
{
    if (!xw->requires_grad) return DN_OK;
    float *dx = dn_grad_buf(ctx, xw);
    if (!dx) return DN_ERR_NOMEM;
    for (int64_t i = 0; i < count; i++) dx[i] += dgate[i];
    return DN_OK;
}

/* ------------------------------------------------------------------ rnn_cell */

/* h' = act(xw + h W_hhᵀ + b_hh), act = tanh or relu (torch.nn.RNNCell's nonlinearity). */
static dn_status rnn_cell_fwd(dn_ctx *ctx, dn_node *node)
{
    static const char *const names[] = {"xw", "h", "w_hh", "b_hh", "mask"};
    double nl = node->attr[0];
    if (nl != RNN_TANH && nl != RNN_RELU)
        return dn_error(DN_ERR_ARG, "nonlinearity must be 0 (tanh) or 1 (relu), got %g", nl);
    dn_status s = cell_check(node, 1, 1, names);
    if (s) return s;
    cell_saved *sv;
    float *pre;
    if ((s = cell_begin(ctx, node, 1, 1, &sv, &pre))) return s;
    int64_t ldx, hid = sv->hidden;
    const float *xw = rows_of(ctx, node->in[0], &ldx);
    dn_tensor *y = dn_ctx_tensor(ctx, 2, node->in[1]->shape);
    if (!xw || !y) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < sv->n; r++) {
        float *yr = y->data + r * hid, *ar = sv->act + r * hid;
        const float *hr = sv->h + r * sv->ldh, *xr = xw + r * ldx;
        if (sv->mask[r] == 0.0f) {
            memcpy(yr, hr, (size_t)hid * sizeof(float));
            continue;
        }
        for (int64_t j = 0; j < hid; j++) ar[j] += xr[j];
        if (nl == RNN_TANH) dn_vtanh(ar, ar, hid);
        else
            for (int64_t j = 0; j < hid; j++) ar[j] = ar[j] > 0.0f ? ar[j] : 0.0f;
        memcpy(yr, ar, (size_t)hid * sizeof(float));
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* da = dh' act'(a), with act' from the output h': tanh' = 1 - h'^2, relu' = [h' > 0]. */
static dn_status rnn_cell_bwd(dn_ctx *ctx, dn_node *node)
{
    const cell_saved *sv = node->saved;
    int64_t n = sv->n, hid = sv->hidden;
    const float *dy = node->out->grad;
    bool relu = node->attr[0] == RNN_RELU;
    dn_tensor *h = node->in[1];
    float *da = dn_ctx_alloc(ctx, (size_t)(n * hid + 1) * sizeof(float));
    float *dh = h->requires_grad ? dn_grad_buf(ctx, h) : NULL;
    if (!da || (h->requires_grad && !dh)) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < n; r++) {
        const float *ar = sv->act + r * hid, *dyr = dy + r * hid;
        float *dar = da + r * hid;
        bool masked = sv->mask[r] == 0.0f;
        for (int64_t j = 0; j < hid; j++) {
            float v = ar[j];
            dar[j] = masked ? 0.0f : dyr[j] * (relu ? (v > 0.0f ? 1.0f : 0.0f) : 1.0f - v * v);
            if (masked && dh) dh[r * hid + j] += dyr[j]; /* h' = h on a padding step */
        }
    }
    dn_status s = add_dxw(ctx, node->in[0], da, n * hid);
    return s ? s : cell_end(ctx, node, sv, 1, da);
}

/* ------------------------------------------------------------------ lstm_cell */

/* gates = xw + h W_hhᵀ + b_hh, split in torch's order i, f, g, o (each H wide):
 *     i = σ(gates_i), f = σ(gates_f), g = tanh(gates_g), o = σ(gates_o)
 *     c' = f c + i g,   h' = o tanh(c')
 * Output [N, 2H] = [h' | c'].
 * Each row runs as whole-array passes (the sums, then the vectorised σ and tanh of kernels/vmath.h over
 * slices of the row, then the products) rather than one element at a time through libm. */
static dn_status lstm_cell_fwd(dn_ctx *ctx, dn_node *node)
{
    static const char *const names[] = {"xw", "h", "c", "w_hh", "b_hh", "mask"};
    dn_status s = cell_check(node, 4, 2, names);
    if (s) return s;
    cell_saved *sv;
    float *pre;
    if ((s = cell_begin(ctx, node, 4, 2, &sv, &pre))) return s;
    int64_t n = sv->n, hid = sv->hidden, gh = 4 * hid, ldx;
    const float *xw = rows_of(ctx, node->in[0], &ldx);
    dn_tensor *y = dn_ctx_tensor(ctx, 2, (int64_t[]){n, 2 * hid});
    sv->extra = dn_ctx_alloc(ctx, (size_t)(n * hid + 1) * sizeof(float));
    if (!xw || !y || !sv->extra) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < n; r++) {
        float *hy = y->data + r * 2 * hid, *cy = hy + hid;
        const float *hr = sv->h + r * sv->ldh, *cr = sv->c + r * sv->ldc;
        if (sv->mask[r] == 0.0f) {
            memcpy(hy, hr, (size_t)hid * sizeof(float));
            memcpy(cy, cr, (size_t)hid * sizeof(float));
            continue;
        }
        const float *xr = xw + r * ldx;
        float *ar = sv->act + r * gh, *tc = sv->extra + r * hid; /* ar holds pre, becomes i f g o */
        const float *ig = ar, *fg = ar + hid, *gg = ar + 2 * hid, *og = ar + 3 * hid;
        for (int64_t j = 0; j < gh; j++) ar[j] += xr[j];
        dn_vsigmoid(ar, ar, 2 * hid); /* i and f are adjacent */
        dn_vtanh(ar + 2 * hid, ar + 2 * hid, hid);
        dn_vsigmoid(ar + 3 * hid, ar + 3 * hid, hid);
        for (int64_t j = 0; j < hid; j++) cy[j] = fg[j] * cr[j] + ig[j] * gg[j];
        dn_vtanh(cy, tc, hid);
        for (int64_t j = 0; j < hid; j++) hy[j] = og[j] * tc[j];
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* With dh', dc' the two halves of the output gradient and tc = tanh(c'):
 *     do = dh' tc,   dc'' = dc' + dh' o (1 - tc^2)          (c' reaches the loss directly and through h')
 *     di = dc'' g,   df = dc'' c,   dg = dc'' i,   dc += dc'' f
 * and through the activations (σ' = σ(1 - σ), tanh' = 1 - tanh^2) to the pre-activations, which are the
 * gradient of xw and of the recurrent half alike. */
static dn_status lstm_cell_bwd(dn_ctx *ctx, dn_node *node)
{
    const cell_saved *sv = node->saved;
    int64_t n = sv->n, hid = sv->hidden, gh = 4 * hid;
    const float *dy = node->out->grad;
    dn_tensor *h = node->in[1], *c = node->in[2];
    float *dgate = dn_ctx_calloc(ctx, (size_t)(n * gh + 1) * sizeof(float));
    float *dh = h->requires_grad ? dn_grad_buf(ctx, h) : NULL;
    float *dc = c->requires_grad ? dn_grad_buf(ctx, c) : NULL;
    if (!dgate || (h->requires_grad && !dh) || (c->requires_grad && !dc)) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < n; r++) {
        const float *dhy = dy + r * 2 * hid, *dcy = dhy + hid;
        if (sv->mask[r] == 0.0f) {
            /* h' = h, c' = c: the gradients pass straight through (dgate stays 0) */
            for (int64_t j = 0; j < hid; j++) {
                if (dh) dh[r * hid + j] += dhy[j];
                if (dc) dc[r * hid + j] += dcy[j];
            }
            continue;
        }
        const float *ar = sv->act + r * gh, *tc = sv->extra + r * hid, *cr = sv->c + r * sv->ldc;
        float *dg = dgate + r * gh;
        for (int64_t j = 0; j < hid; j++) {
            float i = ar[j], f = ar[hid + j], g = ar[2 * hid + j], o = ar[3 * hid + j], t = tc[j];
            float dct = dcy[j] + dhy[j] * o * (1.0f - t * t);
            dg[j] = dct * g * i * (1.0f - i);
            dg[hid + j] = dct * cr[j] * f * (1.0f - f);
            dg[2 * hid + j] = dct * i * (1.0f - g * g);
            dg[3 * hid + j] = dhy[j] * t * o * (1.0f - o);
            if (dc) dc[r * hid + j] += dct * f;
        }
    }
    dn_status s = add_dxw(ctx, node->in[0], dgate, n * gh);
    return s ? s : cell_end(ctx, node, sv, 2, dgate);
}

/* ------------------------------------------------------------------ gru_cell */

/* With hw = h W_hhᵀ + b_hh split in torch's order r, z, n (each H wide):
 *     r = σ(xw_r + hw_r),  z = σ(xw_z + hw_z),  n = tanh(xw_n + r hw_n),  h' = (1 - z) n + z h
 * (r gates the recurrent part of n including its bias b_hn, as torch.nn.GRUCell does). */
static dn_status gru_cell_fwd(dn_ctx *ctx, dn_node *node)
{
    static const char *const names[] = {"xw", "h", "w_hh", "b_hh", "mask"};
    dn_status s = cell_check(node, 3, 1, names);
    if (s) return s;
    cell_saved *sv;
    float *hw;
    if ((s = cell_begin(ctx, node, 3, 1, &sv, &hw))) return s;
    int64_t n = sv->n, hid = sv->hidden, gh = 3 * hid, ldx;
    const float *xw = rows_of(ctx, node->in[0], &ldx);
    dn_tensor *y = dn_ctx_tensor(ctx, 2, node->in[1]->shape);
    if (!xw || !y) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < n; r++) {
        float *yr = y->data + r * hid;
        const float *hr = sv->h + r * sv->ldh;
        if (sv->mask[r] == 0.0f) {
            memcpy(yr, hr, (size_t)hid * sizeof(float));
            continue;
        }
        const float *xr = xw + r * ldx, *pr = hw + r * gh;
        float *ar = sv->act + r * gh; /* becomes r z n */
        for (int64_t j = 0; j < 2 * hid; j++) ar[j] = xr[j] + pr[j];
        dn_vsigmoid(ar, ar, 2 * hid); /* r and z */
        for (int64_t j = 0; j < hid; j++) ar[2 * hid + j] = xr[2 * hid + j] + ar[j] * pr[2 * hid + j];
        dn_vtanh(ar + 2 * hid, ar + 2 * hid, hid);
        const float *z = ar + hid, *nn = ar + 2 * hid;
        for (int64_t j = 0; j < hid; j++) yr[j] = (1.0f - z[j]) * nn[j] + z[j] * hr[j];
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* From dh':  dn = dh' (1 - z),  dz = dh' (h - n),  dh += dh' z  (the direct path), then
 *     da_n = dn (1 - n^2),   da_z = dz z (1 - z),   da_r = da_n hw_n r (1 - r)
 * xw receives [da_r, da_z, da_n]; the recurrent half hw receives [da_r, da_z, da_n r]. */
static dn_status gru_cell_bwd(dn_ctx *ctx, dn_node *node)
{
    const cell_saved *sv = node->saved;
    int64_t n = sv->n, hid = sv->hidden, gh = 3 * hid;
    const float *dy = node->out->grad;
    dn_tensor *h = node->in[1];
    float *dx = dn_ctx_calloc(ctx, (size_t)(n * gh + 1) * sizeof(float));
    float *dhw = dn_ctx_calloc(ctx, (size_t)(n * gh + 1) * sizeof(float));
    float *dh = h->requires_grad ? dn_grad_buf(ctx, h) : NULL;
    if (!dx || !dhw || (h->requires_grad && !dh)) return DN_ERR_NOMEM;
    for (int64_t r = 0; r < n; r++) {
        const float *dyr = dy + r * hid, *hr = sv->h + r * sv->ldh;
        if (sv->mask[r] == 0.0f) {
            if (dh)
                for (int64_t j = 0; j < hid; j++) dh[r * hid + j] += dyr[j];
            continue;
        }
        const float *ar = sv->act + r * gh, *hwn = sv->extra + r * gh + 2 * hid;
        float *dxr = dx + r * gh, *dhr = dhw + r * gh;
        for (int64_t j = 0; j < hid; j++) {
            float rg = ar[j], z = ar[hid + j], nn = ar[2 * hid + j];
            float dan = dyr[j] * (1.0f - z) * (1.0f - nn * nn);
            float daz = dyr[j] * (hr[j] - nn) * z * (1.0f - z);
            float dar = dan * hwn[j] * rg * (1.0f - rg);
            dxr[j] = dhr[j] = dar;
            dxr[hid + j] = dhr[hid + j] = daz;
            dxr[2 * hid + j] = dan;
            dhr[2 * hid + j] = dan * rg;
            if (dh) dh[r * hid + j] += dyr[j] * z;
        }
    }
    dn_status s = add_dxw(ctx, node->in[0], dx, n * gh);
    return s ? s : cell_end(ctx, node, sv, 1, dhw);
}

/* ------------------------------------------------------------------ the table */

/* The mask is drawn at random per case; with the gradient check's seeds every case below has a masked and
 * an unmasked row (tests/test_rnn.c recomputes the draws and checks that). */
#define MASK3 {1, {3}, DN_FILL_BINARY, 0, 1}
static const dn_case embedding_cases[] = {
    {2, {{2, {2, 3}, DN_FILL_CLASS, 0, 5}, {2, {5, 4}, DN_FILL_UNIFORM, -1, 1}}, NULL},
    {2, {{1, {4}, DN_FILL_CLASS, 0, 3}, {2, {3, 2}, DN_FILL_UNIFORM, -1, 1}}, NULL},
};
static const dn_case rnn_cell_cases[] = {
    {5, {{2, {3, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 3}, DN_FILL_UNIFORM, -1, 1},
         {1, {3}, DN_FILL_UNIFORM, -0.5f, 0.5f}, MASK3}, "nonlinearity=0"},
    {5, {{2, {3, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 3}, DN_FILL_UNIFORM, -1, 1},
         {1, {3}, DN_FILL_UNIFORM, -0.5f, 0.5f}, MASK3}, "nonlinearity=1"},
};
#define LSTM_CASE                                                                                          \
    {6, {{2, {4, 12}, DN_FILL_UNIFORM, -1, 1}, {2, {4, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {4, 3}, DN_FILL_UNIFORM, -1, 1}, \
         {2, {12, 3}, DN_FILL_UNIFORM, -1, 1}, {1, {12}, DN_FILL_UNIFORM, -0.5f, 0.5f}, {1, {4}, DN_FILL_BINARY, 0, 1}}, \
     NULL}
static const dn_case lstm_cell_cases[] = {LSTM_CASE, LSTM_CASE}; /* two seeds: masks 0 1 0 0 and 0 1 1 0 */
static const dn_case gru_cell_cases[] = {
    {5, {{2, {3, 9}, DN_FILL_UNIFORM, -1, 1}, {2, {3, 3}, DN_FILL_UNIFORM, -1, 1}, {2, {9, 3}, DN_FILL_UNIFORM, -1, 1},
         {1, {9}, DN_FILL_UNIFORM, -0.5f, 0.5f}, MASK3}, NULL},
};

const dn_op dn_ops_rnn[] = {
    {.name = "embedding", .arity = 2, .nondiff = 1u << 0, .forward = embedding_fwd, .backward = embedding_bwd,
     .doc = "y[..., :] = weight[indices[...], :]; indices [N] or [N, T] (integers as floats), weight [V, E]; "
            "torch.nn.functional.embedding",
     .cases = embedding_cases, .n_cases = 2},
    {.name = "rnn_cell", .arity = 5, .n_attrs = 1, .attr_names = {"nonlinearity"}, .attr_defaults = {0},
     .nondiff = 1u << 4, .forward = rnn_cell_fwd, .backward = rnn_cell_bwd,
     .doc = "(xw [N,H], h, w_hh [H,H], b_hh, mask [N]) -> h' = act(xw + h W_hhᵀ + b_hh), act tanh (0) or relu (1); "
            "rows with mask 0 keep h; torch.nn.RNNCell",
     .cases = rnn_cell_cases, .n_cases = 2},
    {.name = "lstm_cell", .arity = 6, .nondiff = 1u << 5, .forward = lstm_cell_fwd, .backward = lstm_cell_bwd,
     .doc = "(xw [N,4H], h, c, w_hh [4H,H], b_hh, mask) -> [h' | c'] [N,2H]: gates i f g o = xw + h W_hhᵀ + b_hh; "
            "c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c'); mask 0 keeps h, c; torch.nn.LSTMCell",
     .cases = lstm_cell_cases, .n_cases = 2},
    {.name = "gru_cell", .arity = 5, .nondiff = 1u << 4, .forward = gru_cell_fwd, .backward = gru_cell_bwd,
     .doc = "(xw [N,3H], h, w_hh [3H,H], b_hh, mask) -> h' = (1-z) n + z h; r, z = σ(xw + h W_hhᵀ + b_hh), "
            "n = tanh(xw_n + r (h W_hnᵀ + b_hn)); mask 0 keeps h; torch.nn.GRUCell",
     .cases = gru_cell_cases, .n_cases = 1},
    {0},
};

/* ------------------------------------------------------------------ wrappers */

dn_tensor *dn_embedding(dn_ctx *ctx, dn_tensor *indices, dn_tensor *weight)
{
    dn_tensor *in[] = {indices, weight};
    return dn_apply(ctx, "embedding", 2, in, NULL);
}

/* A NULL mask means every row steps; a NULL b_hh means no recurrent bias (torch's bias=False). */
static dn_tensor *cell_defaults(dn_ctx *ctx, dn_tensor **b_hh, dn_tensor **mask, const dn_tensor *h, int gates)
{
    if (!ctx || ctx->status || !h) return NULL; /* dn_apply reports it */
    if (!*mask) {
        int64_t n = h->ndim >= 1 ? h->shape[0] : 1;
        *mask = dn_ctx_tensor(ctx, 1, &n);
        if (!*mask) return NULL;
        for (int64_t r = 0; r < n; r++) (*mask)->data[r] = 1.0f;
    }
    if (!*b_hh) {
        int64_t gh = (int64_t)gates * (h->ndim == 2 ? h->shape[1] : 1);
        *b_hh = dn_ctx_zeros(ctx, 1, &gh);
    }
    return *b_hh;
}

dn_tensor *dn_rnn_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask,
                       int nonlinearity)
{
    cell_defaults(ctx, &b_hh, &mask, h, 1);
    dn_tensor *in[] = {xw, h, w_hh, b_hh, mask};
    double a[] = {nonlinearity};
    return dn_apply(ctx, "rnn_cell", 5, in, a);
}

dn_tensor *dn_lstm_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *c, dn_tensor *w_hh, dn_tensor *b_hh,
                        dn_tensor *mask)
{
    cell_defaults(ctx, &b_hh, &mask, h, 4);
    dn_tensor *in[] = {xw, h, c, w_hh, b_hh, mask};
    return dn_apply(ctx, "lstm_cell", 6, in, NULL);
}

dn_tensor *dn_gru_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask)
{
    cell_defaults(ctx, &b_hh, &mask, h, 3);
    dn_tensor *in[] = {xw, h, w_hh, b_hh, mask};
    return dn_apply(ctx, "gru_cell", 5, in, NULL);
}
