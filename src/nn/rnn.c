/* Whole recurrent sequences from registered ops, so the tape does backpropagation through time.
 *
 * Per layer and direction:
 *     xw = linear(layer input [N, T, in], W_ih, b_ih)          all T input projections in one gemm
 *     states = rnn_seq / lstm_seq / gru_seq(xw, h0 (c0), W_hh, b_hh, mask)
 *                                                              every step (T-1 .. 0 for the reverse direction)
 *                                                              in one op; mask[t, n] = t < length[n]
 *     y = states' h [N, T, H] * mask                           0 at padding steps, as pad_packed_sequence
 * (src/ops/rnn.c: the sequence ops run the cells' arithmetic step after step, with one tape node per layer.)
 * The directions' outputs are joined along the features, dropout (a mask multiply) applies between layers
 * in training, and the last state of each layer and direction goes into hn (cn).
 *
 * Masks do the work of torch's packed sequences: a padded step leaves the state untouched, so the forward
 * direction's final state is the state at each sequence's last valid step, and the reverse direction, run
 * from t = T-1 down, keeps h0 through the padding and starts stepping at the sequence's own last step. */
#include "nn/rnn.h"

#include <pthread.h>

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
                            float dropout, const dn_rng *rng, bool training, bool shard, int64_t *hidden)
{
    if (kind < DN_RNN_TANH || kind > DN_GRU) return dn_error(DN_ERR_ARG, "dn_rnn_sequence: unknown kind %d", (int)kind);
    const char *kn = dn_rnn_kind_name(kind);
    if (!x || !params) return dn_error(DN_ERR_ARG, "dn_rnn_sequence (%s): x and params must not be NULL", kn);
    /* a shard of a batch spread over replicas may be empty (N = 0) */
    if (x->ndim != 3 || x->shape[0] < (shard ? 0 : 1) || x->shape[1] < 1)
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

/* The sequence ops, found in the registry once (not by name at every forward pass): rnn_seq, lstm_seq, gru_seq. */
static const dn_op *seq_ops[3];
static pthread_once_t seq_ops_once = PTHREAD_ONCE_INIT;

static void find_seq_ops(void)
{
    seq_ops[0] = dn_op_find("rnn_seq");
    seq_ops[1] = dn_op_find("lstm_seq");
    seq_ops[2] = dn_op_find("gru_seq");
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
    dn_status s = check_args(kind, x, lengths, layers, bidirectional, params, h0, c0, dropout, rng, training,
                             ctx->replica != NULL, &hid);
    if (s) return seq_fail(ctx, s);

    const int dirs = bidirectional ? 2 : 1, rows = layers * dirs;
    const int64_t n = x->shape[0], steps = x->shape[1], g = dn_rnn_gates(kind);
    const bool lstm = kind == DN_LSTM;
    const double nonlinearity = kind == DN_RNN_RELU ? 1 : 0;

    /* masks: [T, N] for the sequence ops, 1 where step t is inside sequence n, and the same as [N, T, 1] for y;
     * when every step is valid, y needs no masking */
    bool all_valid = true;
    dn_tensor *mask_tn = dn_ctx_tensor(ctx, 2, (int64_t[]){steps, n});
    dn_tensor *mask_nt = dn_ctx_tensor(ctx, 3, (int64_t[]){n, steps, 1});
    dn_tensor *zeros = dn_ctx_zeros(ctx, 2, (int64_t[]){n, hid});
    dn_tensor *zero_bias = dn_ctx_zeros(ctx, 1, (int64_t[]){g * hid});
    dn_tensor **finals = dn_ctx_alloc(ctx, (size_t)rows * 2 * sizeof *finals); /* h (and c) per row */
    if (!mask_tn || !mask_nt || !zeros || !zero_bias || !finals) return seq_fail(ctx, DN_ERR_NOMEM);
    for (int64_t t = 0; t < steps; t++)
        for (int64_t i = 0; i < n; i++) {
            float v = (!lengths || t < lengths[i]) ? 1.0f : 0.0f;
            mask_tn->data[t * n + i] = mask_nt->data[i * steps + t] = v;
            all_valid &= v != 0.0f;
        }
    pthread_once(&seq_ops_once, find_seq_ops);
    const dn_op *op = lstm ? seq_ops[1] : kind == DN_GRU ? seq_ops[2] : seq_ops[0];

    dn_tensor *layer_in = x;
    for (int l = 0; l < layers; l++) {
        dn_tensor *dir_out[2] = {NULL, NULL};
        for (int d = 0; d < dirs; d++) {
            int row = l * dirs + d;
            dn_tensor *const *p = params + 4 * row;
            dn_tensor *w_hh = p[1], *b_hh = p[3] ? p[3] : zero_bias;
            dn_tensor *xw = dn_linear(ctx, layer_in, p[0], p[2]); /* [N, T, G*H]: every step's projection */
            dn_tensor *h = state_row(ctx, h0, row, zeros, n, hid);
            dn_tensor *c = lstm ? state_row(ctx, c0, row, zeros, n, hid) : NULL;
            /* every step of this layer and direction: [N, T, H] (the LSTM: [2, N, T, H], h's then c's) */
            dn_tensor *st;
            if (lstm) {
                dn_tensor *in[] = {xw, h, c, w_hh, b_hh, mask_tn};
                st = dn_op_apply(ctx, op, 6, in, (double[]){d});
            } else {
                dn_tensor *in[] = {xw, h, w_hh, b_hh, mask_tn};
                st = dn_op_apply(ctx, op, 5, in, kind == DN_GRU ? (double[]){d} : (double[]){nonlinearity, d});
            }
            const int64_t seq_shape[3] = {n, steps, hid}, last = d == 0 ? steps - 1 : 0;
            dn_tensor *hs = lstm ? dn_reshape(ctx, dn_slice(ctx, st, 0, 0, 1, 1), 3, seq_shape) : st;
            dn_tensor *cs = lstm ? dn_reshape(ctx, dn_slice(ctx, st, 0, 1, 2, 1), 3, seq_shape) : NULL;
            if (ctx->status) return ctx->status;
            /* the final state: after the last step the direction ran (padding steps kept each row's state) */
            finals[2 * row] = dn_reshape(ctx, dn_slice(ctx, hs, 1, last, last + 1, 1), 2, (int64_t[]){n, hid});
            finals[2 * row + 1] = cs ? dn_reshape(ctx, dn_slice(ctx, cs, 1, last, last + 1, 1), 2, (int64_t[]){n, hid}) : NULL;
            dir_out[d] = all_valid ? hs : dn_mul(ctx, hs, mask_nt); /* 0 at padding steps */
            if (ctx->status) return ctx->status;
        }
        dn_tensor *out = dirs == 1 ? dir_out[0] : dn_concat(ctx, 2, dir_out, 2); /* [N, T, dirs*H] */
        if (training && dropout > 0 && l < layers - 1 && out) {
            /* inverted dropout: drop with probability p, scale the kept outputs by 1/(1-p) */
            dn_tensor *mask = dn_ctx_tensor(ctx, 3, out->shape);
            if (!mask) return seq_fail(ctx, DN_ERR_NOMEM);
            float keep = 1.0f / (1.0f - dropout);
            int64_t count = dn_tensor_numel(mask);
            if (ctx->replica) {
                /* a shard of a batch spread over replicas: every replica draws the whole batch's mask, in the
                 * order one process draws it, and keeps its own samples' part, so the generators stay in step
                 * and the shards' masks are the pieces of the whole batch's */
                const int64_t per = steps * out->shape[2], first = ctx->shard_offset * per;
                const int64_t total = ctx->global_batch * per;
                if (ctx->shard_offset < 0 || first + count > total)
                    return seq_fail(ctx, dn_error(DN_ERR_ARG, "dn_rnn_sequence: a shard of %lld samples at %lld does "
                                                              "not fit a global batch of %lld", (long long)n,
                                                  (long long)ctx->shard_offset, (long long)ctx->global_batch));
                for (int64_t i = 0; i < total; i++) {
                    float u = dn_rng_uniform(rng);
                    if (i >= first && i < first + count) mask->data[i - first] = u < dropout ? 0.0f : keep;
                }
            } else {
                for (int64_t i = 0; i < count; i++) mask->data[i] = dn_rng_uniform(rng) < dropout ? 0.0f : keep;
            }
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
