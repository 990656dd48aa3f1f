/* Whole recurrent sequences (RNN, LSTM, GRU) from the cell ops: stacked layers, both directions, dropout
 * between layers, initial and final states, and uneven lengths in one batch.  Internal (src/nn/rnn.c);
 * docs/rnn.md has the equations and an example. */
#ifndef DN_NN_RNN_H
#define DN_NN_RNN_H

#include "internal.h"

typedef enum { DN_RNN_TANH, DN_RNN_RELU, DN_LSTM, DN_GRU } dn_rnn_kind;

/* Gates per cell: 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n); the weights have gates*H rows. */
int dn_rnn_gates(dn_rnn_kind kind);
/* "rnn_tanh", "rnn_relu", "lstm", "gru". */
const char *dn_rnn_kind_name(dn_rnn_kind kind);
/* torch's name of parameter `which` (0 w_ih, 1 w_hh, 2 b_ih, 3 b_hh) of a layer and direction (1 = reverse):
 * "weight_ih_l0", "bias_hh_l1_reverse", ...  Returns buf. */
const char *dn_rnn_param_name(int layer, int direction, int which, char *buf, size_t size);

/* Runs a whole batch of sequences through `layers` stacked layers (and both directions when bidirectional),
 * as torch.nn.RNN / LSTM / GRU with batch_first=True and packed sequences:
 *   x        [N, T, I]
 *   lengths  N lengths in 1..T, or NULL (all T).  Steps t >= length are padding: they change nothing, the
 *            reverse direction starts at each sequence's own last valid step, and y is 0 there.
 *   params   4 per layer and direction in torch's order (layer 0, layer 0 reverse, layer 1, ...):
 *            w_ih [G*H, in] (in = I for layer 0, dirs*H after), w_hh [G*H, H], b_ih [G*H], b_hh [G*H];
 *            a NULL bias means none (torch's bias=False).
 *   h0, c0   [layers*dirs, N, H] or NULL (zeros); c0 only for DN_LSTM.
 *   dropout  probability of dropping each output of every layer but the last, in training (rng draws it).
 * Results (any pointer may be NULL when not wanted):
 *   y  [N, T, dirs*H];  hn, cn  [layers*dirs, N, H], each sequence's state at its last valid step
 *   (cn is set to NULL for kinds other than LSTM).
 * Built only from registered ops, so dn_backward does backpropagation through time.  On error returns the
 * status, records it in ctx (sticky, as ops do) and sets the results to NULL. */
DN_NODISCARD dn_status dn_rnn_sequence(dn_ctx *ctx, dn_rnn_kind kind, dn_tensor *x, const int64_t *lengths,
                                       int layers, bool bidirectional, dn_tensor *const *params, dn_tensor *h0,
                                       dn_tensor *c0, float dropout, dn_rng *rng, bool training, dn_tensor **y,
                                       dn_tensor **hn, dn_tensor **cn);

#endif /* DN_NN_RNN_H */
