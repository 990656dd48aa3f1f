/* Whole recurrent sequences from registered ops, so the tape does backpropagation through time.
 *
 * Per layer and direction:
 *     xw = linear(layer input [N, T, in], W_ih, b_ih)          all T input projections in one gemm
 *     for each step t (T-1 .. 0 for the reverse direction):
 *         state = cell(xw[:, t], state, W_hh, b_hh, mask_t)    mask_t[n] = t < length[n]; xw[:, t] is a view
 *         y_t   = h * mask_t                                   0 at padding steps, as pad_packed_sequence
 *     output = concat(y_0 .. y_{T-1}) reshaped to [N, T, H]
 * The directions' outputs are joined along the features, dropout (a mask multiply) applies between layers
 * in training, and the last state of each layer and direction goes into hn (cn).
 *
 * Masks do the work of torch's packed sequences: a padded step leaves the state untouched, so the forward
 * direction's final state is the state at each sequence's last valid step, and the reverse direction, run
 * from t = T-1 down, keeps h0 through the padding and starts stepping at the sequence's own last step. */
#include "nn/rnn.h"

int dn_rnn_gates(dn_rnn_kind kind) { return kind == DN_LSTM ? 4 : kind == DN_GRU ? 3 : 1; }

const char *dn_rnn_kind_name(dn_rnn_kind kind)
{
    switch (kind) {
    case DN_RNN_TANH: return "rnn_tanh";
    case DN_RNN_RELU: return "rnn_relu";
    case DN_LSTM: return "lstm";
    case DN_GRU: return "gru";
    }
    return "?";
}

const char *dn_rnn_param_name(int layer, int direction, int which, char *buf, size_t size)
{
    static const char *const base[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    snprintf(buf, size, "%s_l%d%s", base[which & 3], layer, direction ? "_reverse" : "");
    return buf;
}

/* Records a failure in the context (sticky, as an op's would be) and returns it. */
static dn_status seq_fail(dn_ctx *ctx, dn_status s)
{
    if (!ctx->status) ctx->status = s;
    return s;
}

/* Joins n tensors along axis: concat takes at most DN_MAX_INPUTS inputs, so long sequences are joined in
 * groups, then the groups.  Overwrites xs. */
static dn_tensor *concat_many(dn_ctx *ctx, int n, dn_tensor **xs, int axis)
{
    while (n > 1) {
        int m = 0;
        for (int i = 0; i < n; i += DN_MAX_INPUTS) {
            int k = n - i < DN_MAX_INPUTS ? n - i : DN_MAX_INPUTS;
            xs[m++] = k == 1 ? xs[i] : dn_concat(ctx, k, xs + i, axis);
        }
        n = m;
    }
    return xs[0];
}

/* A constant tensor header over existing arena data (masks), not on the tape. */
static dn_tensor *const_view(dn_ctx *ctx, dn_tensor *base, float *data, int ndim, const int64_t *shape)
{
    dn_tensor *t = dn_ctx_view(ctx, base);
    if (!t) return NULL;
    t->data = data;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    dn_contiguous_strides(ndim, shape, t->stride);
    return t;
}

/* Checks one parameter's shape; name is torch's ("weight_ih_l1_reverse"). */
static dn_status check_param(const char *kind, const dn_tensor *p, int layer, int dir, int which, int64_t rows,
                             int64_t cols)
{
    char name[48];
    dn_rnn_param_name(layer, dir, which, name, sizeof name);
    if (!p) {
        if (which >= 2) return DN_OK; /* no bias */
        return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): parameter %s is NULL", kind, name);
    }
    bool ok = which < 2 ? (p->ndim == 2 && p->shape[0] == rows && p->shape[1] == cols)
                        : (p->ndim == 1 && p->shape[0] == rows);
    if (ok) return DN_OK;
    if (which < 2)
        return dn_error(DN_ERR_SHAPE, "dn_rnn_sequence (%s): %s must be [%lld, %lld], got %s", kind, name,
                        (long long)rows, (long long)cols, dn_tshape(p));
    return dn_error(DN_ERR_SHAPE, "dn_rnn_sequence (%s): %s must be [%lld], got %s", kind, name, (long long)rows,
                    dn_tshape(p));
}

static dn_status check_state(const char *kind, const char *what, const dn_tensor *s, int64_t rows, int64_t n,
                             int64_t hid)
{
    if (!s || (s->ndim == 3 && s->shape[0] == rows && s->shape[1] == n && s->shape[2] == hid)) return DN_OK;
    return dn_error(DN_ERR_SHAPE, "dn_rnn_sequence (%s): %s must be [layers*dirs, N, H] = [%lld, %lld, %lld], got %s",
                    kind, what, (long long)rows, (long long)n, (long long)hid, dn_tshape(s));
}

/* Every argument, before any op runs, so a mistake is reported as the caller's and not as a cell's. */
static dn_status check_args(dn_rnn_kind kind, const dn_tensor *x, const int64_t *lengths, int layers,
                            bool bidirectional, dn_tensor *const *params, const dn_tensor *h0, const dn_tensor *c0,
                            float dropout, const dn_rng *rng, bool training, int64_t *hidden)
{
    if (kind < DN_RNN_TANH || kind > DN_GRU) return dn_error(DN_ERR_ARG, "dn_rnn_sequence: unknown kind %d", (int)kind);
    const char *kn = dn_rnn_kind_name(kind);
    if (!x || !params) return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): x and params must not be NULL", kn);
    if (x->ndim != 3 || x->shape[0] < 1 || x->shape[1] < 1)
        return dn_error(DN_ERR_SHAPE, "dn_rnn_sequence (%s): x must be [N, T, I] (batch first) with N, T >= 1, got %s",
                        kn, dn_tshape(x));
    if (layers < 1 || layers > 64)
        return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): layers must be 1..64, got %d", kn, layers);
    if (!(dropout >= 0 && dropout < 1))
        return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): dropout must be in [0, 1), got %g", kn, (double)dropout);
    if (dropout > 0 && training && layers > 1 && !rng)
        return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): dropout in training needs a random generator", kn);
    int64_t n = x->shape[0], steps = x->shape[1];
    for (int64_t i = 0; lengths && i < n; i++)
        if (lengths[i] < 1 || lengths[i] > steps)
            return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): lengths[%lld] = %lld is outside 1..T = 1..%lld", kn,
                            (long long)i, (long long)lengths[i], (long long)steps);
    int dirs = bidirectional ? 2 : 1;
    int64_t g = dn_rnn_gates(kind);
    const dn_tensor *w_hh = params[1];
    if (!w_hh || w_hh->ndim != 2 || w_hh->shape[1] < 1 || w_hh->shape[0] != g * w_hh->shape[1]) {
        if (!w_hh) return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): parameter weight_hh_l0 is NULL", kn);
        return dn_error(DN_ERR_SHAPE, "dn_rnn_sequence (%s): weight_hh_l0 must be [%lld*H, H], got %s", kn,
                        (long long)g, dn_tshape(w_hh));
    }
    int64_t hid = w_hh->shape[1];
    for (int l = 0; l < layers; l++)
        for (int d = 0; d < dirs; d++) {
            dn_tensor *const *p = params + 4 * (l * dirs + d);
            int64_t in = l == 0 ? x->shape[2] : dirs * hid;
            int64_t cols[4] = {in, hid, 0, 0};
            for (int k = 0; k < 4; k++) {
                dn_status s = check_param(kn, p[k], l, d, k, g * hid, cols[k]);
                if (s) return s;
            }
        }
    int64_t rows = (int64_t)layers * dirs;
    dn_status s = check_state(kn, "h0", h0, rows, n, hid);
    if (!s) s = check_state(kn, "c0", c0, rows, n, hid);
    if (s) return s;
    if (c0 && kind != DN_LSTM)
        return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): c0 is only for LSTM; pass NULL", kn);
    *hidden = hid;
    return DN_OK;
}

/* Row k of a [rows, N, H] state as [N, H] (a view), or zeros when the state is not given. */
static dn_tensor *state_row(dn_ctx *ctx, dn_tensor *s, int k, dn_tensor *zeros, int64_t n, int64_t hid)
{
    if (!s) return zeros;
    return dn_reshape(ctx, dn_slice(ctx, s, 0, k, k + 1, 1), 2, (int64_t[]){n, hid});
}

dn_status dn_rnn_sequence(dn_ctx *ctx, dn_rnn_kind kind, dn_tensor *x, const int64_t *lengths, int layers,
                          bool bidirectional, dn_tensor *const *params, dn_tensor *h0, dn_tensor *c0, float dropout,
                          dn_rng *rng, bool training, dn_tensor **y, dn_tensor **hn, dn_tensor **cn)
{
    if (y) *y = NULL;
    if (hn) *hn = NULL;
    if (cn) *cn = NULL;
    if (!ctx) return dn_error(DN_ERR_ARG, "dn_rnn_sequence: context is NULL");
    if (ctx->status) return ctx->status; /* sticky: the first error's message stays */
    int64_t hid = 0;
    dn_status s = check_args(kind, x, lengths, layers, bidirectional, params, h0, c0, dropout, rng, training, &hid);
    if (s) return seq_fail(ctx, s);

    const int dirs = bidirectional ? 2 : 1, rows = layers * dirs;
    const int64_t n = x->shape[0], steps = x->shape[1], g = dn_rnn_gates(kind);
    const bool lstm = kind == DN_LSTM;
    const double nonlinearity = kind == DN_RNN_RELU ? 1 : 0;

    /* masks [T, N]: 1 where step t is inside sequence n; when every step is, y needs no masking */
    bool all_valid = true;
    dn_tensor *mask_all = dn_ctx_tensor(ctx, 2, (int64_t[]){steps, n});
    dn_tensor *zeros = dn_ctx_zeros(ctx, 2, (int64_t[]){n, hid});
    dn_tensor *zero_bias = dn_ctx_zeros(ctx, 1, (int64_t[]){g * hid});
    dn_tensor **step_mask = dn_ctx_alloc(ctx, (size_t)steps * sizeof *step_mask);  /* [N] for the cells */
    dn_tensor **out_mask = dn_ctx_alloc(ctx, (size_t)steps * sizeof *out_mask);    /* [N, 1] for y */
    dn_tensor **outs = dn_ctx_alloc(ctx, (size_t)steps * sizeof *outs);             /* one direction's y_t */
    dn_tensor **finals = dn_ctx_alloc(ctx, (size_t)rows * 2 * sizeof *finals);      /* h (and c) per row */
    if (!mask_all || !zeros || !zero_bias || !step_mask || !out_mask || !outs || !finals)
        return seq_fail(ctx, DN_ERR_NOMEM);
    for (int64_t t = 0; t < steps; t++) {
        float *m = mask_all->data + t * n;
        for (int64_t i = 0; i < n; i++) {
            m[i] = (!lengths || t < lengths[i]) ? 1.0f : 0.0f;
            all_valid &= m[i] != 0.0f;
        }
        step_mask[t] = const_view(ctx, mask_all, m, 1, &n);
        out_mask[t] = const_view(ctx, mask_all, m, 2, (int64_t[]){n, 1});
        if (!step_mask[t] || !out_mask[t]) return seq_fail(ctx, DN_ERR_NOMEM);
    }

    dn_tensor *layer_in = x;
    for (int l = 0; l < layers; l++) {
        dn_tensor *dir_out[2] = {NULL, NULL};
        for (int d = 0; d < dirs; d++) {
            int row = l * dirs + d;
            dn_tensor *const *p = params + 4 * row;
            dn_tensor *w_hh = p[1], *b_hh = p[3] ? p[3] : zero_bias;
            /* [N, T, G*H] seen as [N, T*G*H]: step t is a column slice, a view the cell reads in place */
            dn_tensor *xw = dn_reshape(ctx, dn_linear(ctx, layer_in, p[0], p[2]), 2, (int64_t[]){n, steps * g * hid});
            dn_tensor *h = state_row(ctx, h0, row, zeros, n, hid);
            dn_tensor *c = lstm ? state_row(ctx, c0, row, zeros, n, hid) : NULL;
            for (int64_t k = 0; k < steps && !ctx->status; k++) {
                int64_t t = d == 0 ? k : steps - 1 - k;
                dn_tensor *xt = dn_slice(ctx, xw, 1, t * g * hid, (t + 1) * g * hid, 1); /* [N, G*H] */
                if (lstm) {
                    dn_tensor *in[] = {xt, h, c, w_hh, b_hh, step_mask[t]};
                    dn_tensor *hc = dn_apply(ctx, "lstm_cell", 6, in, NULL); /* [N, 2H] = [h | c] */
                    h = dn_slice(ctx, hc, 1, 0, hid, 1);
                    c = dn_slice(ctx, hc, 1, hid, 2 * hid, 1);
                } else {
                    dn_tensor *in[] = {xt, h, w_hh, b_hh, step_mask[t]};
                    h = kind == DN_GRU ? dn_apply(ctx, "gru_cell", 5, in, NULL)
                                       : dn_apply(ctx, "rnn_cell", 5, in, &nonlinearity);
                }
                outs[t] = all_valid ? h : dn_mul(ctx, h, out_mask[t]);
            }
            if (ctx->status) return ctx->status;
            /* [N, H] x T -> [N, T*H] -> [N, T, H]: step t's features land at y[:, t, :] */
            dir_out[d] = dn_reshape(ctx, concat_many(ctx, (int)steps, outs, 1), 3, (int64_t[]){n, steps, hid});
            finals[2 * row] = h;
            finals[2 * row + 1] = c;
        }
        dn_tensor *out = dirs == 1 ? dir_out[0] : dn_concat(ctx, 2, dir_out, 2); /* [N, T, dirs*H] */
        if (training && dropout > 0 && l < layers - 1 && out) {
            /* inverted dropout: drop with probability p, scale the kept outputs by 1/(1-p) */
            dn_tensor *mask = dn_ctx_tensor(ctx, 3, out->shape);
            if (!mask) return seq_fail(ctx, DN_ERR_NOMEM);
            float keep = 1.0f / (1.0f - dropout);
            int64_t count = dn_tensor_numel(mask);
            for (int64_t i = 0; i < count; i++) mask->data[i] = dn_rng_uniform(rng) < dropout ? 0.0f : keep;
            out = dn_mul(ctx, out, mask);
        }
        layer_in = out;
        if (ctx->status) return ctx->status;
    }

    /* final states: [N, H] per layer and direction -> [layers*dirs, N, H] */
    dn_tensor **parts = dn_ctx_alloc(ctx, (size_t)rows * sizeof *parts);
    if (!parts) return seq_fail(ctx, DN_ERR_NOMEM);
    for (int which = 0; which < (lstm ? 2 : 1); which++) {
        for (int r = 0; r < rows; r++) parts[r] = dn_reshape(ctx, finals[2 * r + which], 3, (int64_t[]){1, n, hid});
        dn_tensor *st = concat_many(ctx, rows, parts, 0);
        if (ctx->status) return ctx->status;
        if (which == 0 && hn) *hn = st;
        if (which == 1 && cn) *cn = st;
    }
    if (y) *y = layer_in;
    return DN_OK;
}
