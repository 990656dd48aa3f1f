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

/* ------------------------------------------------------------------ one row of one step
 *
 * The gate arithmetic of a single sample at a single step, shared by the cells (one step, N rows) and the
 * sequence ops (T steps, N rows each), so both compute the same numbers.  Rows of padding steps never get
 * here: their callers copy the state instead. */

/* RNN: ar holds the pre-activation xw-less half (b_hh + h W_hhᵀ); y = act(ar + xr), kept in ar too. */
static void rnn_row_fwd(int64_t hid, bool relu, float *ar, const float *xr, float *yr)
{
    for (int64_t j = 0; j < hid; j++) ar[j] += xr[j];
    if (!relu) dn_vtanh(ar, ar, hid);
    else
        for (int64_t j = 0; j < hid; j++) ar[j] = ar[j] > 0.0f ? ar[j] : 0.0f;
    memcpy(yr, ar, (size_t)hid * sizeof(float));
}

/* da = dy act'(a), from the activation's output: tanh' = 1 - y^2, relu' = [y > 0]. */
static void rnn_row_bwd(int64_t hid, bool relu, const float *ar, const float *dyr, float *dar)
{
    for (int64_t j = 0; j < hid; j++) {
        float v = ar[j];
        dar[j] = dyr[j] * (relu ? (v > 0.0f ? 1.0f : 0.0f) : 1.0f - v * v);
    }
}

/* LSTM: ar holds b_hh + h W_hhᵀ and becomes the gates i f g o; cr is c, hy/cy receive h'/c', tc tanh(c'). */
static void lstm_row_fwd(int64_t hid, float *ar, const float *xr, const float *cr, float *hy, float *cy, float *tc)
{
    const int64_t gh = 4 * hid;
    const float *ig = ar, *fg = ar + hid, *gg = ar + 2 * hid, *og = ar + 3 * hid;
    for (int64_t j = 0; j < gh; j++) ar[j] += xr[j];
    dn_vsigmoid(ar, ar, 2 * hid); /* i and f are adjacent */
    dn_vtanh(ar + 2 * hid, ar + 2 * hid, hid);
    dn_vsigmoid(ar + 3 * hid, ar + 3 * hid, hid);
    for (int64_t j = 0; j < hid; j++) cy[j] = fg[j] * cr[j] + ig[j] * gg[j];
    dn_vtanh(cy, tc, hid);
    for (int64_t j = 0; j < hid; j++) hy[j] = og[j] * tc[j];
}

/* With dh', dc' (dhy, dcy) and tc = tanh(c'):
 *     do = dh' tc,   dc'' = dc' + dh' o (1 - tc^2)          (c' reaches the loss directly and through h')
 *     di = dc'' g,   df = dc'' c,   dg = dc'' i,   dc += dc'' f   (dc: NULL when c takes no gradient)
 * and through the activations (σ' = σ(1 - σ), tanh' = 1 - tanh^2) to the pre-activations dg[4H]. */
static void lstm_row_bwd(int64_t hid, const float *ar, const float *tc, const float *cr, const float *dhy,
                         const float *dcy, float *dg, float *dc)
{
    for (int64_t j = 0; j < hid; j++) {
        float i = ar[j], f = ar[hid + j], g = ar[2 * hid + j], o = ar[3 * hid + j], t = tc[j];
        float dct = dcy[j] + dhy[j] * o * (1.0f - t * t);
        dg[j] = dct * g * i * (1.0f - i);
        dg[hid + j] = dct * cr[j] * f * (1.0f - f);
        dg[2 * hid + j] = dct * i * (1.0f - g * g);
        dg[3 * hid + j] = dhy[j] * t * o * (1.0f - o);
        if (dc) dc[j] += dct * f;
    }
}

/* GRU: pr = h W_hhᵀ + b_hh (kept), ar becomes r z n, yr = h'. */
static void gru_row_fwd(int64_t hid, float *ar, const float *xr, const float *pr, const float *hr, float *yr)
{
    for (int64_t j = 0; j < 2 * hid; j++) ar[j] = xr[j] + pr[j];
    dn_vsigmoid(ar, ar, 2 * hid); /* r and z */
    for (int64_t j = 0; j < hid; j++) ar[2 * hid + j] = xr[2 * hid + j] + ar[j] * pr[2 * hid + j];
    dn_vtanh(ar + 2 * hid, ar + 2 * hid, hid);
    const float *z = ar + hid, *nn = ar + 2 * hid;
    for (int64_t j = 0; j < hid; j++) yr[j] = (1.0f - z[j]) * nn[j] + z[j] * hr[j];
}

/* From dh':  dn = dh' (1 - z),  dz = dh' (h - n),  dh += dh' z  (the direct path; dh NULL: none), then
 *     da_n = dn (1 - n^2),   da_z = dz z (1 - z),   da_r = da_n hw_n r (1 - r)
 * xw receives dxr = [da_r, da_z, da_n]; the recurrent half hw receives dhr = [da_r, da_z, da_n r]. */
static void gru_row_bwd(int64_t hid, const float *ar, const float *pr, const float *hr, const float *dyr, float *dxr,
                        float *dhr, float *dh)
{
    const float *hwn = pr + 2 * hid;
    for (int64_t j = 0; j < hid; j++) {
        float rg = ar[j], z = ar[hid + j], nn = ar[2 * hid + j];
        float dan = dyr[j] * (1.0f - z) * (1.0f - nn * nn);
        float daz = dyr[j] * (hr[j] - nn) * z * (1.0f - z);
        float dar = dan * hwn[j] * rg * (1.0f - rg);
        dxr[j] = dhr[j] = dar;
        dxr[hid + j] = dhr[hid + j] = daz;
        dxr[2 * hid + j] = dan;
        dhr[2 * hid + j] = dan * rg;
        if (dh) dh[j] += dyr[j] * z;
    }
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
        float *yr = y->data + r * hid;
        const float *hr = sv->h + r * sv->ldh;
        if (sv->mask[r] == 0.0f)
            memcpy(yr, hr, (size_t)hid * sizeof(float));
        else
            rnn_row_fwd(hid, nl == RNN_RELU, sv->act + r * hid, xw + r * ldx, yr);
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
        const float *dyr = dy + r * hid;
        float *dar = da + r * hid;
        if (sv->mask[r] != 0.0f) {
            rnn_row_bwd(hid, relu, sv->act + r * hid, dyr, dar);
            continue;
        }
        for (int64_t j = 0; j < hid; j++) {
            dar[j] = 0.0f;
            if (dh) dh[r * hid + j] += dyr[j]; /* h' = h on a padding step */
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
        lstm_row_fwd(hid, sv->act + r * gh, xw + r * ldx, cr, hy, cy, sv->extra + r * hid);
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* dh', dc' are the two halves of the output gradient (lstm_row_bwd has the formulas); the gates'
 * pre-activation gradient is the gradient of xw and of the recurrent half alike. */
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
        lstm_row_bwd(hid, sv->act + r * gh, sv->extra + r * hid, sv->c + r * sv->ldc, dhy, dcy, dgate + r * gh,
                     dc ? dc + r * hid : NULL);
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
        gru_row_fwd(hid, sv->act + r * gh, xw + r * ldx, hw + r * gh, hr, yr);
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

/* gru_row_bwd has the formulas; xw and the recurrent half receive different gradients (dx, dhw). */
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
        gru_row_bwd(hid, sv->act + r * gh, sv->extra + r * gh, hr, dyr, dx + r * gh, dhw + r * gh, dh ? dh + r * hid : NULL);
    }
    dn_status s = add_dxw(ctx, node->in[0], dx, n * gh);
    return s ? s : cell_end(ctx, node, sv, 1, dhw);
}


/* ------------------------------------------------------------------ whole sequences: rnn_seq, lstm_seq, gru_seq
 *
 * One op runs every step of one layer and direction, with the same row arithmetic as the cells above, so
 * that the tape holds one node per layer instead of a handful per step:
 *     xw [N, T, G*H] (all input projections, from one `linear`), h0 [N, H] (c0 for the LSTM),
 *     w_hh [G*H, H], b_hh [G*H], mask [T, N] of 0/1 (0: a padding step that keeps the state)
 *  -> the state after every step: [N, T, H] (rnn, gru), or [2, N, T, H] = h's then c's (lstm).
 * reverse=1 runs t = T-1 .. 0, each step reading the state of step t+1.
 *
 * Why one op: step by step, every cell's output is sliced (h from [h | c]), every slice's gradient buffer is
 * zeroed and copied back, and the recurrent weight gradient is T gemms with K = N (a batch of 32: each one
 * reads and writes all of dW_hh for a sliver of work).  Here the backward pass keeps dh and dc in two small
 * buffers, writes the gates' gradients once into [N, T, G*H] (which is also xw's gradient, in xw's own
 * layout), and forms dW_hh += dGᵀ H_prev as one gemm over all N*T rows. */

enum { SEQ_RNN, SEQ_LSTM, SEQ_GRU };

typedef struct seq_saved {
    int kind;
    bool relu, reverse;
    int64_t n, steps, hidden, gates;
    const float *xw, *h0, *c0, *w, *mask; /* contiguous; mask [T, N] */
    float *act;                           /* [N, T, G*H]: activated gates (LSTM i f g o, GRU r z n, RNN h') */
    float *extra;                         /* LSTM: tanh(c') [N, T, H]; GRU: h W_hhᵀ + b_hh [N, T, 3H] */
} seq_saved;

static dn_status seq_check(const dn_node *node, int64_t gates, int n_state)
{
    const dn_tensor *xw = node->in[0], *h0 = node->in[1];
    if (xw->ndim != 3 || xw->shape[0] < 0 || xw->shape[1] < 1)
        return dn_error(DN_ERR_SHAPE, "xw must be [N, T, %lld*H] with T >= 1, got %s", (long long)gates, dn_tshape(xw));
    if (h0->ndim != 2 || h0->shape[0] != xw->shape[0] || h0->shape[1] < 1 || xw->shape[2] != gates * h0->shape[1])
        return dn_error(DN_ERR_SHAPE, "h0 must be [N, H] with xw %s = [N, T, %lld*H], got %s", dn_tshape(xw),
                        (long long)gates, dn_tshape(h0));
    int64_t n = xw->shape[0], steps = xw->shape[1], hid = h0->shape[1], gh = gates * hid;
    if (n_state == 2 && (node->in[2]->ndim != 2 || node->in[2]->shape[0] != n || node->in[2]->shape[1] != hid))
        return dn_error(DN_ERR_SHAPE, "c0 must be [%lld, %lld] like h0, got %s", (long long)n, (long long)hid,
                        dn_tshape(node->in[2]));
    const dn_tensor *w = node->in[1 + n_state], *b = node->in[2 + n_state], *m = node->in[3 + n_state];
    if (w->ndim != 2 || w->shape[0] != gh || w->shape[1] != hid)
        return dn_error(DN_ERR_SHAPE, "w_hh must be [%lld, %lld] for h0 %s, got %s", (long long)gh, (long long)hid,
                        dn_tshape(h0), dn_tshape(w));
    if (b->ndim != 1 || b->shape[0] != gh)
        return dn_error(DN_ERR_SHAPE, "b_hh must be [%lld], got %s", (long long)gh, dn_tshape(b));
    if (m->ndim != 2 || m->shape[0] != steps || m->shape[1] != n)
        return dn_error(DN_ERR_SHAPE, "mask must be [T, N] = [%lld, %lld], got %s", (long long)steps, (long long)n,
                        dn_tshape(m));
    for (int64_t i = 0; i < steps * n; i++) {
        float v = dn_tensor_get(m, i);
        if (v != 0.0f && v != 1.0f)
            return dn_error(DN_ERR_ARG, "mask must hold 0 (padding: keep the state) or 1 (step), got %g at step %lld, "
                                        "row %lld", (double)v, (long long)(i / n), (long long)(i % n));
    }
    for (int a = 0; a < node->op->n_attrs; a++)
        if (node->attr[a] != 0 && node->attr[a] != 1)
            return dn_error(DN_ERR_ARG, "%s must be 0 or 1, got %g", node->op->attr_names[a], node->attr[a]);
    return DN_OK;
}

/* Step k of the run is time t; the state it starts from is h0 (k = 0) or the state after step tp. */
static inline int64_t seq_time(const seq_saved *sv, int64_t k) { return sv->reverse ? sv->steps - 1 - k : k; }
static inline int64_t seq_prev(const seq_saved *sv, int64_t t) { return sv->reverse ? t + 1 : t - 1; }

static dn_status seq_fwd(dn_ctx *ctx, dn_node *node, int kind)
{
    const int n_state = kind == SEQ_LSTM ? 2 : 1;
    const int64_t gates = kind == SEQ_LSTM ? 4 : kind == SEQ_GRU ? 3 : 1;
    dn_status s = seq_check(node, gates, n_state);
    if (s) return s;
    seq_saved *sv = dn_ctx_calloc(ctx, sizeof *sv);
    if (!sv) return DN_ERR_NOMEM;
    const int64_t n = node->in[0]->shape[0], steps = node->in[0]->shape[1], hid = node->in[1]->shape[1];
    const int64_t gh = gates * hid, rows = n * steps;
    *sv = (seq_saved){.kind = kind, .relu = kind == SEQ_RNN && node->attr[0] != 0,
                      .reverse = node->attr[node->op->n_attrs - 1] != 0, .n = n, .steps = steps, .hidden = hid,
                      .gates = gates};
    sv->xw = dn_ctx_contig(ctx, node->in[0]);
    sv->h0 = dn_ctx_contig(ctx, node->in[1]);
    sv->c0 = kind == SEQ_LSTM ? dn_ctx_contig(ctx, node->in[2]) : NULL;
    sv->w = dn_ctx_contig(ctx, node->in[1 + n_state]);
    const float *b = dn_ctx_contig(ctx, node->in[2 + n_state]);
    sv->mask = dn_ctx_contig(ctx, node->in[3 + n_state]);
    sv->act = dn_ctx_alloc(ctx, (size_t)(rows * gh) * sizeof(float));
    sv->extra = kind == SEQ_RNN ? NULL : dn_ctx_alloc(ctx, (size_t)(rows * (kind == SEQ_GRU ? gh : hid)) * sizeof(float));
    dn_tensor *y = kind == SEQ_LSTM ? dn_ctx_tensor(ctx, 4, (int64_t[]){2, n, steps, hid})
                                    : dn_ctx_tensor(ctx, 3, (int64_t[]){n, steps, hid});
    if (!sv->xw || !sv->h0 || (kind == SEQ_LSTM && !sv->c0) || !sv->w || !b || !sv->mask || !sv->act ||
        (kind != SEQ_RNN && !sv->extra) || !y)
        return DN_ERR_NOMEM;
    float *H = y->data, *C = kind == SEQ_LSTM ? y->data + rows * hid : NULL; /* H[r, t] at (r*T + t)*hid */
    float *pre_all = kind == SEQ_GRU ? sv->extra : sv->act; /* where b_hh + h W_hhᵀ lands */
    /* W_hhᵀ packed once for all T steps (the gemm would repack it at every step) */
    float *packed = dn_ctx_alloc(ctx, dn_sgemm_packed_b_floats(hid, gh) * sizeof(float));
    if (!packed) return DN_ERR_NOMEM;
    dn_packed_b wt;
    dn_sgemm_pack_b(true, hid, gh, sv->w, hid, packed, &wt);
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = seq_time(sv, k), tp = seq_prev(sv, t);
        const float *hp = k == 0 ? sv->h0 : H + tp * hid, *cp = k == 0 ? sv->c0 : C ? C + tp * hid : NULL;
        const int64_t ldp = k == 0 ? hid : steps * hid; /* row stride of the previous state */
        float *pre = pre_all + t * gh;
        for (int64_t r = 0; r < n; r++) memcpy(pre + r * steps * gh, b, (size_t)gh * sizeof(float));
        dn_sgemm_packed(false, n, 1.0f, hp, ldp, &wt, 1.0f, pre, steps * gh);
        for (int64_t r = 0; r < n; r++) {
            const int64_t row = r * steps + t;
            const float *hr = hp + r * ldp;
            float *hy = H + row * hid;
            if (sv->mask[t * n + r] == 0.0f) {
                memcpy(hy, hr, (size_t)hid * sizeof(float));
                if (C) memcpy(C + row * hid, cp + r * ldp, (size_t)hid * sizeof(float));
                continue;
            }
            float *ar = sv->act + row * gh;
            const float *xr = sv->xw + row * gh;
            if (kind == SEQ_RNN) rnn_row_fwd(hid, sv->relu, ar, xr, hy);
            else if (kind == SEQ_LSTM) lstm_row_fwd(hid, ar, xr, cp + r * ldp, hy, C + row * hid, sv->extra + row * hid);
            else gru_row_fwd(hid, ar, xr, sv->extra + row * gh, hr, hy);
        }
    }
    node->saved = sv;
    node->out = y;
    return DN_OK;
}

static dn_status rnn_seq_fwd(dn_ctx *ctx, dn_node *node) { return seq_fwd(ctx, node, SEQ_RNN); }
static dn_status lstm_seq_fwd(dn_ctx *ctx, dn_node *node) { return seq_fwd(ctx, node, SEQ_LSTM); }
static dn_status gru_seq_fwd(dn_ctx *ctx, dn_node *node) { return seq_fwd(ctx, node, SEQ_GRU); }

/* Backward through time.  dh and dc hold the gradient reaching the state after the step being undone (from
 * later steps); each step adds the output's own gradient for that step, produces the gates' gradient row by
 * row (into dG, 0 on padding rows, whose state gradient passes straight through), and sends dG W_hh back to
 * the previous state.  Then, once: dxw += dG (dX for the GRU), db_hh += Σ dG, dW_hh += dGᵀ H_prev, and the
 * gradients left in dh, dc go to h0, c0. */
static dn_status seq_bwd(dn_ctx *ctx, dn_node *node)
{
    const seq_saved *sv = node->saved;
    const int kind = sv->kind, n_state = kind == SEQ_LSTM ? 2 : 1;
    const int64_t n = sv->n, steps = sv->steps, hid = sv->hidden, gh = sv->gates * hid, rows = n * steps;
    dn_tensor *xw = node->in[0], *h0 = node->in[1], *c0 = kind == SEQ_LSTM ? node->in[2] : NULL;
    dn_tensor *w = node->in[1 + n_state], *b = node->in[2 + n_state];
    const float *H = node->out->data, *C = kind == SEQ_LSTM ? H + rows * hid : NULL;
    const float *dH = node->out->grad, *dC = kind == SEQ_LSTM ? dH + rows * hid : NULL;
    float *dh = dn_ctx_calloc(ctx, (size_t)(n * hid) * sizeof(float));
    float *dc = kind == SEQ_LSTM ? dn_ctx_calloc(ctx, (size_t)(n * hid) * sizeof(float)) : NULL;
    float *din = dn_ctx_alloc(ctx, (size_t)(2 * hid) * sizeof(float)); /* one row's incoming dh' and dc' */
    /* every row of dG (and dX) is written below: by the gate arithmetic, or zeroed on a padding step */
    float *dG = dn_ctx_alloc(ctx, (size_t)(rows * gh) * sizeof(float));
    float *dX = kind == SEQ_GRU ? dn_ctx_alloc(ctx, (size_t)(rows * gh) * sizeof(float)) : dG;
    float *packed = dn_ctx_alloc(ctx, dn_sgemm_packed_b_floats(gh, hid) * sizeof(float));
    if (!dh || (kind == SEQ_LSTM && !dc) || !din || !dG || !dX || !packed) return DN_ERR_NOMEM;
    dn_packed_b wp; /* W_hh packed once for the T products dG_t W_hh */
    dn_sgemm_pack_b(false, gh, hid, sv->w, hid, packed, &wp);
    float *dhy = din, *dcy = din + hid;
    for (int64_t k = steps - 1; k >= 0; k--) {
        const int64_t t = seq_time(sv, k), tp = seq_prev(sv, t);
        const float *hp = k == 0 ? sv->h0 : H + tp * hid, *cp = k == 0 ? sv->c0 : C ? C + tp * hid : NULL;
        const int64_t ldp = k == 0 ? hid : steps * hid;
        for (int64_t r = 0; r < n; r++) {
            const int64_t row = r * steps + t;
            float *dhr = dh + r * hid, *dcr = dc ? dc + r * hid : NULL;
            for (int64_t j = 0; j < hid; j++) dhy[j] = dH[row * hid + j] + dhr[j];
            if (dcr)
                for (int64_t j = 0; j < hid; j++) dcy[j] = dC[row * hid + j] + dcr[j];
            if (sv->mask[t * n + r] == 0.0f) { /* the state passed through unchanged, and so does its gradient */
                memcpy(dhr, dhy, (size_t)hid * sizeof(float));
                if (dcr) memcpy(dcr, dcy, (size_t)hid * sizeof(float));
                memset(dG + row * gh, 0, (size_t)gh * sizeof(float));
                if (dX != dG) memset(dX + row * gh, 0, (size_t)gh * sizeof(float));
                continue;
            }
            memset(dhr, 0, (size_t)hid * sizeof(float)); /* refilled below: the direct path, then dG W_hh */
            const float *ar = sv->act + row * gh;
            if (kind == SEQ_RNN) {
                rnn_row_bwd(hid, sv->relu, ar, dhy, dG + row * gh);
            } else if (kind == SEQ_LSTM) {
                memset(dcr, 0, (size_t)hid * sizeof(float));
                lstm_row_bwd(hid, ar, sv->extra + row * hid, cp + r * ldp, dhy, dcy, dG + row * gh, dcr);
            } else {
                gru_row_bwd(hid, ar, sv->extra + row * gh, hp + r * ldp, dhy, dX + row * gh, dG + row * gh, dhr);
            }
        }
        /* dh(previous state) += dG_t W_hh; padding rows of dG_t are 0 */
        dn_sgemm_packed(false, n, 1.0f, dG + t * gh, steps * gh, &wp, 1.0f, dh, hid);
    }
    if (h0->requires_grad) {
        float *g = dn_grad_buf(ctx, h0);
        if (!g) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < n * hid; i++) g[i] += dh[i];
    }
    if (c0 && c0->requires_grad) {
        float *g = dn_grad_buf(ctx, c0);
        if (!g) return DN_ERR_NOMEM;
        for (int64_t i = 0; i < n * hid; i++) g[i] += dc[i];
    }
    /* xw's gradient is dX (dG); as xw has none yet, the buffer itself becomes it (nothing below writes it) */
    if (xw->requires_grad && dn_grad_add(ctx, xw, dX)) return DN_ERR_NOMEM;
    if (b->requires_grad) {
        float *db = dn_grad_buf(ctx, b);
        if (!db) return DN_ERR_NOMEM;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < gh; j++) db[j] += dG[r * gh + j];
    }
    if (w->requires_grad) {
        /* H_prev[r, t]: the state step t started from, in the rows' order (r*T + t), for one gemm with K = N*T */
        float *hprev = dn_ctx_alloc(ctx, (size_t)(rows * hid) * sizeof(float));
        float *dw = dn_grad_buf(ctx, w);
        if (!hprev || !dw) return DN_ERR_NOMEM;
        for (int64_t r = 0; r < n; r++)
            for (int64_t t = 0; t < steps; t++) {
                const bool first = t == (sv->reverse ? steps - 1 : 0);
                const float *src = first ? sv->h0 + r * hid : H + (r * steps + seq_prev(sv, t)) * hid;
                memcpy(hprev + (r * steps + t) * hid, src, (size_t)hid * sizeof(float));
            }
        dn_sgemm(true, false, gh, hid, rows, 1.0f, dG, gh, hprev, hid, 1.0f, dw, hid);
    }
    return DN_OK;
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

/* Sequence ops: N = 2, T = 3; the [T, N] mask is drawn at random (0/1), forward and reverse runs. */
#define SEQ_MASK {2, {3, 2}, DN_FILL_BINARY, 0, 1}
#define SEQ_IN(gates, hid) {3, {2, 3, (gates) * (hid)}, DN_FILL_UNIFORM, -1, 1}, {2, {2, hid}, DN_FILL_UNIFORM, -1, 1}
#define SEQ_W(gates, hid) {2, {(gates) * (hid), hid}, DN_FILL_UNIFORM, -1, 1}, {1, {(gates) * (hid)}, DN_FILL_UNIFORM, -0.5f, 0.5f}
static const dn_case rnn_seq_cases[] = {
    {5, {SEQ_IN(1, 3), SEQ_W(1, 3), SEQ_MASK}, "nonlinearity=0"},
    {5, {SEQ_IN(1, 3), SEQ_W(1, 3), SEQ_MASK}, "nonlinearity=1 reverse=1"},
};
static const dn_case lstm_seq_cases[] = {
    {6, {SEQ_IN(4, 2), {2, {2, 2}, DN_FILL_UNIFORM, -1, 1}, SEQ_W(4, 2), SEQ_MASK}, NULL},
    {6, {SEQ_IN(4, 2), {2, {2, 2}, DN_FILL_UNIFORM, -1, 1}, SEQ_W(4, 2), SEQ_MASK}, "reverse=1"},
};
static const dn_case gru_seq_cases[] = {
    {5, {SEQ_IN(3, 2), SEQ_W(3, 2), SEQ_MASK}, NULL},
    {5, {SEQ_IN(3, 2), SEQ_W(3, 2), SEQ_MASK}, "reverse=1"},
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
    {.name = "rnn_seq", .arity = 5, .n_attrs = 2, .attr_names = {"nonlinearity", "reverse"}, .attr_defaults = {0, 0},
     .nondiff = 1u << 4, .forward = rnn_seq_fwd, .backward = seq_bwd,
     .doc = "(xw [N,T,H], h0 [N,H], w_hh, b_hh, mask [T,N]) -> every step's h [N,T,H]: rnn_cell over t = 0..T-1 "
            "(reverse=1: T-1..0); torch.nn.RNN's recurrence",
     .cases = rnn_seq_cases, .n_cases = 2},
    {.name = "lstm_seq", .arity = 6, .n_attrs = 1, .attr_names = {"reverse"}, .attr_defaults = {0},
     .nondiff = 1u << 5, .forward = lstm_seq_fwd, .backward = seq_bwd,
     .doc = "(xw [N,T,4H], h0, c0 [N,H], w_hh, b_hh, mask [T,N]) -> [2,N,T,H]: every step's h, then every step's c; "
            "lstm_cell over the sequence (reverse=1: backwards); torch.nn.LSTM's recurrence",
     .cases = lstm_seq_cases, .n_cases = 2},
    {.name = "gru_seq", .arity = 5, .n_attrs = 1, .attr_names = {"reverse"}, .attr_defaults = {0},
     .nondiff = 1u << 4, .forward = gru_seq_fwd, .backward = seq_bwd,
     .doc = "(xw [N,T,3H], h0 [N,H], w_hh, b_hh, mask [T,N]) -> every step's h [N,T,H]: gru_cell over the sequence "
            "(reverse=1: backwards); torch.nn.GRU's recurrence",
     .cases = gru_seq_cases, .n_cases = 2},
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
