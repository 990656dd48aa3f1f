#!/usr/bin/python3
"""Golden files for whole recurrent sequences (dn_rnn_sequence, src/nn/rnn.c) from torch.nn.RNN / LSTM / GRU.

    /usr/bin/python3 tools/golden_rnn.py [outdir]          (default: tests/golden; Debian's torch 1.13)

writes tests/golden/seq_<kind>.txt for kind rnn_tanh, rnn_relu, lstm and gru.  tests/test_rnn.c reads them.

The case: 2 layers, bidirectional, batch_first, batch N = 3, T = 5 steps, input I = 4, hidden H = 3, dropout 0,
uneven lengths (5, 3, 2) through pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence, an initial
state h0 (and c0 for LSTM) [4, 3, 3].  The input holds random values at the padding steps too: torch never
reads them, and neither may dendrite.  The loss is a fixed weighted sum of everything the layer returns,

    L = sum(y * gy) + sum(hn * ghn) (+ sum(cn * gcn) for LSTM)

and the file holds its gradient with respect to the input, h0, c0 and every parameter.

How the numbers are made: every input is float32 (a torch.Generator seeded per kind); the references are computed
by torch in float64 from those float32 values and rounded to float32 when written, so the file holds the exact
answer to the float32 question.  torch's own float32 computation is checked against the criterion the C test
applies (below) and the worst ratio printed: above 1 would mean the tolerance asks more than float32 gives.

Format (whitespace-separated; '#' starts a comment that runs to the end of the line):

    kind=<rnn_tanh|rnn_relu|lstm|gru>  layers=<L>  bidirectional=<0|1>
    tol=<tolerance for y, hn, cn>  grad_tol=<tolerance for the gradients>
    tensor <name> <ndim> <d0> .. <dk>       then the numel values in row-major order (%.9g, exact for float32)
    ...

Tensor names: input [N, T, I]; lengths [N] (integers written as numbers); h0, c0 [L*2, N, H]; the parameters by
their torch names in torch's order (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l0_reverse,
..., bias_hh_l1_reverse); the expected y [N, T, 2H] (zeros at padding steps), hn, cn; the loss weights gy, ghn,
gcn; and grad.<name> for input, h0, c0 and every parameter.  c0, cn, gcn and grad.c0 appear for LSTM only.

Criterion (tests/test_rnn.c, as tests/test_golden.c), tol = 1e-5 for y, hn, cn and grad_tol = 5e-5 for gradients:
    |got - expected| <= tol * max(|expected|, 1e-2 * max|expected over the tensor|, 1e-3)
Why the gradients get more: BPTT sums a weight's gradient over every step, row and layer above it, with
cancellation, and torch's own float32 lands up to 2.5e-5 from the float64 reference there (GRU); dendrite's
portable gemm up to 1.3e-5, its AVX2 one 0.9e-5.
"""
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, T, I, H, LAYERS = 3, 5, 4, 3, 2
LENGTHS = [5, 3, 2]
TOL, GRAD_TOL = 1e-5, 5e-5
FLOOR_REL, FLOOR_ABS = 1e-2, 1e-3
KINDS = {
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
}


def module(kind, dtype):
    cls, kw = KINDS[kind]
    return cls(I, H, num_layers=LAYERS, bidirectional=True, batch_first=True, dropout=0.0, **kw).to(dtype)


def draw(kind, seed):
    """Every float32 input of the case."""
    gen = torch.Generator().manual_seed(seed)
    bound = 1.0 / H ** 0.5  # torch's default initialisation range

    def uniform(shape):
        return (torch.rand(shape, generator=gen) * 2 - 1) * bound

    def normal(shape, std=1.0):
        return torch.randn(shape, generator=gen) * std

    m = module(kind, torch.float32)
    case = {"input": normal([N, T, I]), "h0": normal([LAYERS * 2, N, H], 0.5)}
    if kind == "lstm":
        case["c0"] = normal([LAYERS * 2, N, H], 0.5)
    params = [(name, uniform(list(getattr(m, name).shape))) for name in m._flat_weights_names]
    weights = {"gy": normal([N, T, 2 * H]), "ghn": normal([LAYERS * 2, N, H])}
    if kind == "lstm":
        weights["gcn"] = normal([LAYERS * 2, N, H])
    return case, params, weights


def run(kind, case, params, weights, dtype):
    """Outputs and gradients of the case, computed in dtype."""
    m = module(kind, dtype)
    with torch.no_grad():
        for name, v in params:
            getattr(m, name).copy_(v.to(dtype))
    ins = {k: v.to(dtype).requires_grad_() for k, v in case.items()}
    packed = pack_padded_sequence(ins["input"], torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    state = (ins["h0"], ins["c0"]) if kind == "lstm" else ins["h0"]
    out, state = m(packed, state)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    outs = {"y": y, "hn": state[0] if kind == "lstm" else state}
    if kind == "lstm":
        outs["cn"] = state[1]
    loss = sum((outs[k] * weights["g" + k].to(dtype)).sum() for k in outs)
    wrt = list(ins.values()) + [getattr(m, name) for name, _ in params]
    names = list(ins) + [name for name, _ in params]
    grads = torch.autograd.grad(loss, wrt)
    outs.update({"grad." + n: g for n, g in zip(names, grads)})
    return {k: v.detach() for k, v in outs.items()}


def worst_ratio(got, exp, tol):
    got, exp = got.double().reshape(-1), exp.double().reshape(-1)
    floor = max(FLOOR_REL * exp.abs().max().item(), FLOOR_ABS)
    return ((got - exp).abs() / (tol * torch.clamp(exp.abs(), min=floor))).max().item()


def block(name, t):
    t = t.detach().to(torch.float32)
    lines = ["tensor %s %d %s" % (name, t.dim(), " ".join(str(d) for d in t.shape))]
    vals = ["%.9g" % v for v in t.reshape(-1).tolist()]
    lines += [" ".join(vals[i:i + 8]) for i in range(0, len(vals), 8)]
    return lines


def render(kind, seed):
    case, params, weights = draw(kind, seed)
    ref = run(kind, case, params, weights, torch.float64)
    f32 = run(kind, case, params, weights, torch.float32)
    worst = max(worst_ratio(f32[k], ref[k].to(torch.float32), GRAD_TOL if k.startswith("grad.") else TOL)
                for k in ref)
    lines = ["# Generated by tools/golden_rnn.py (torch %s); do not edit, regenerate." % torch.__version__,
             "# torch.nn.%s, 2 layers, bidirectional, batch_first, lengths %s (packed), dropout 0"
             % (KINDS[kind][0].__name__, LENGTHS),
             "kind=%s layers=%d bidirectional=1 tol=%g grad_tol=%g" % (kind, LAYERS, TOL, GRAD_TOL)]
    for k, v in case.items():
        lines += block(k, v)
        if k == "input":
            lines += block("lengths", torch.tensor(LENGTHS, dtype=torch.float32))
    for name, v in params:
        lines += block(name, v)
    for k in ("y", "hn", "cn"):
        if k in ref:
            lines += block(k, ref[k])
    for k, v in weights.items():
        lines += block(k, v)
    for k, v in ref.items():
        if k.startswith("grad."):
            lines += block(k, v)
    return "\n".join(lines) + "\n", worst


def main(out_dir=os.path.join(ROOT, "tests", "golden")):
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(out_dir, exist_ok=True)
    for i, kind in enumerate(KINDS):
        text, worst = render(kind, 1234 + i)
        path = os.path.join(out_dir, "seq_%s.txt" % kind)
        with open(path, "w") as f:
            f.write(text)
        print("seq_%-10s %6d bytes  torch-f32 worst %.3f of tol%s"
              % (kind, len(text), worst, "" if worst <= 1 else "   (torch's own float32 exceeds tol)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
