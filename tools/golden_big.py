#!/usr/bin/python3
"""PyTorch goldens at real sizes: writes tests/golden/big/<family>.txt, read by tests/test_golden_big.c.

    /usr/bin/python3 tools/golden_big.py            write every fixture
    /usr/bin/python3 tools/golden_big.py --check    regenerate into a temporary folder and diff against the
                                                    committed files (exit status 1 on any difference)

Why.  The toy goldens of tools/make_goldens.py (M*N*K <= 256, <= 4 filters, H = 2-3) never reach the kernels that
only large problems take: the blocked and packed gemm with its K blocks and edge tiles, the skinny (1-4 rows) and
gemv paths, the convolution's packed / dot-product paths, the fused ReLU write-back, the pre-packed W_hh of the
sequence ops, batch-norm folding at inference.  These fixtures give those sizes to every op whose kernel changes
with size, and tests/test_golden_big.c runs each case once per instruction set the CPU has (dn_set_isa: avx512,
avx2, portable, neon), so every kernel variant meets PyTorch, not only itself.

Inputs are not stored: both sides regenerate them.  Value i of a tensor named "<case>/<tensor>" is
    s = FNV-1a-64(name);  z = splitmix64 mix of (s + (i + 1) * 0x9E3779B97F4A7C15 mod 2^64)
    u = ((z >> 40) - 2^23) / 2^23                  uniform in [-1, 1), a multiple of 2^-23: exact in float32
and a fill maps u exactly: "uniform S" -> S * u (S a power of two), "positive" -> |u| + 0.5 (in [0.5, 1.5)),
"steps" -> a [T, N] mask, 1 where t < T - (n % 4) (rows of uneven length).  The reference is computed by torch in
float64 from those float32 inputs (the same torch functions as make_goldens.py's table), so it is the exact
answer to the float32 question and the tolerance measures only dendrite's rounding.

Outputs are not stored either, only checks of them.  Each checked tensor (the output, and the gradient of every
input that asks for one, for a seeded upstream gradient "<case>/grad_output" uniform in [-1, 1)) is viewed as a
matrix Y [R, C] (activations [N, C, H, W] as [N*C, H*W]; weights [F, C, kh, kw] as [F, C*kh*kw], the gemm's
shape; otherwise the last axis are the columns; a view with under 8 rows or columns is made square instead) and
the fixture holds, computed in float64:
    rows_i = sum_j v_j Y_ij   (R numbers)      cols_j = sum_i w_i Y_ij   (C numbers)
with seeded weights v, w ("<case>/<check>#v", "#w") of magnitude in [0.5, 1) and random sign; plus S = 128
elements at seeded positions ("#s": index ((z >> 32) * numel) >> 32) and the tensor's peak max|Y|.  Numbers
are written to 8 significant digits (5e-8 relative at worst: under 0.5% of the tightest tolerance).  The
criterion is make_goldens.py's,
    |got - expected| <= tol * max(|expected|, 1e-2 * peak, 1e-3)          per sampled element,
and for a projection the sum of those allowances over its elements, computed from dendrite's own values clamped
to the peak (so a wrong value cannot widen its own allowance by more than tol * peak) and divided by (1 - tol)
(so that a tensor whose every element passes always passes):
    |got_rows_i - rows_i| <= tol / (1 - tol) * sum_j |v_j| max(min(|got_ij|, peak), 1e-2 * peak, 1e-3).

Why that catches kernel bugs.  Every element lies in one row projection and one column projection, each with a
weight of at least 0.5, so an element off by e moves both by at least e/2, and several wrong elements cancel only
if their errors happen to balance under random signs the kernel cannot know.  A wrong gemm tile (6 x 16
elements), a wrong row or column, a wrong K block, a wrong edge or a missing ReLU moves many projections at once,
each by orders of magnitude more than its allowance.  A single wrong element is caught by its two projections once
its error exceeds that row's or column's allowance, about tol * (number of elements) * (typical |Y|) -- for the
64 x 512 output with C = 512 and tol 8e-5, some 3% of a typical element -- so an element that is plainly wrong (an
index off by one, a value from the neighbouring column, a lost or doubled term: O(1) errors) is always caught, and
the sampled elements hold 128 elements per tensor to the full per-element criterion.  Tested (docs/ops.md): in the
AVX2 gemm micro-kernel, one element of one 6 x 16 tile replaced by its neighbour, for one tile in the whole run
(the n-th micro-kernel call, n = 1, 2501, 5001, ...: 70 places): 66 breaks fail the test; at the other 4 the
element is not observable (a ReLU-masked zero row of dW, a column col2im drops in the padding, a padded sequence
step, bn_fold's unfolded reference pass).
Scaling that element by 1 + 1e-1 is caught in some places and 1 + 1e-2 in few: the check is made for kernel bugs,
not for last-bit drift, which the per-element goldens (make_goldens.py) and the gemm tests cover.

Tolerance per check.  An element of a product is a float32 sum of K terms; with random signs its rounding error
grows like u * sqrt(K) * (typical |Y|) (u = 2^-24), and the criterion judges elements near zero against 1e-2 of
the peak (~4.5 typical |Y|), so the worst ratio over ~10^5 elements is about 40 * u * sqrt(K) / tol.  1e-5 holds
while K <= ~10; longer sums get tol = 3e-6 * sqrt(K) rounded to one digit (the "why" line of each check names its
K: 784 -> 8e-5, 288 -> 5e-5, 64 -> 2e-5), which leaves torch's own float32 at most 0.46 of the bound (printed as
"torch-f32 worst" and checked to be <= 1) and dendrite at most 0.28 on AVX2 and portable (docs/ops.md lists them
per op); the margin is for instruction sets this was not measured on.  For the sequence ops K is one step's sum
(H, or the gates' 4H / 3H, or the N*T terms of a weight gradient): their errors do not grow over the 16 steps
(measured at most 0.28 of the bound).  Such a bound still fails any real kernel bug by orders of magnitude.

Format (whitespace-separated; '#' starts a comment):

    golden_big 1
    case <name>
    input <name> <ndim> <dims..> <fill> [<S>] <grad 0|1>     regenerated from "<case>/<name>"
    node <out> <op> <input names..> [attr=value ..]            one registry op (dn_op_apply); the last is the output
    model <n>                                                  instead of nodes: <n> lines of cfg, then
    set <tensor or buffer name> <fill> [<S>]                   the model's parameters and running statistics;
                                                               output = forward in evaluation mode, no tape
    check <output | grad.<input>> <ndim> <dims..> rows <R> cols <C> tol <tol> peak <peak> samples <S>
    <R row projections> <C column projections> <S sampled values>
    end
"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_goldens as mg  # noqa: E402  (the torch function of every op)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden", "big")
FLOOR_REL, FLOOR_ABS = mg.FLOOR_REL, mg.FLOOR_ABS
SAMPLES = 128
U = 2.0 ** -24

# The fused ReLU as the registry spells it: (op, extra attributes).
RELU_FUSED = {"linear": ("linear_relu", {}), "conv2d": ("conv2d_relu", {})}

# ------------------------------------------------------------------ the seeded generator (same in C)

M64 = (1 << 64) - 1
GAMMA = np.uint64(0x9E3779B97F4A7C15)


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & M64
    return h


def stream(name, n):
    """splitmix64 outputs 0 .. n-1 of the stream named `name`, as uint64."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(1, n + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(name, n):
    """n float32 values in [-1, 1), multiples of 2^-23."""
    k = (stream(name, n) >> np.uint64(40)).astype(np.int64) - (1 << 23)
    return k.astype(np.float32) / np.float32(1 << 23)


def weights(name, n):
    """Projection weights: magnitude in [0.5, 1), random sign, float64 (exact: u/2 +- 1/2)."""
    u = uniform(name, n).astype(np.float64)
    return 0.5 * u + np.where(u < 0, -0.5, 0.5)


def positions(name, s, numel):
    """s element indices in [0, numel): (top 32 bits * numel) >> 32."""
    return ((stream(name, s) >> np.uint64(32)) * np.uint64(numel)) >> np.uint64(32)


def fill(name, shape, kind, scale=None):
    n = int(np.prod(shape)) if shape else 1
    if kind == "uniform":
        assert scale > 0 and math.frexp(scale)[0] == 0.5, "scale must be a power of two (exact in float32)"
        v = uniform(name, n) * np.float32(scale)
    elif kind == "positive":
        v = np.abs(uniform(name, n)) + np.float32(0.5)
    elif kind == "steps":
        steps, rows = shape
        v = np.array([[1.0 if t < steps - (r % 4) else 0.0 for r in range(rows)] for t in range(steps)], np.float32)
    else:
        raise ValueError(kind)
    return torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32).reshape(shape))


# ------------------------------------------------------------------ cases


class In:
    def __init__(self, name, shape, kind="uniform", scale=1.0, grad=True):
        self.name, self.shape, self.kind, self.scale, self.grad = name, list(shape), kind, scale, grad

    def line(self):
        s = " %s" % mg.fmt_attr(self.scale) if self.kind == "uniform" else ""
        return "input %s %d %s %s%s %d" % (self.name, len(self.shape), " ".join(map(str, self.shape)), self.kind, s,
                                           int(self.grad))


class Case:
    """A graph of registry ops (nodes: (out, op, [inputs], attrs)), or a model (cfg, sets, torch function).
    k: the length of the float32 sum behind each checked tensor (for its tolerance), by check name."""

    def __init__(self, name, inputs, nodes=None, model=None, k=None, why=None, views=None):
        self.name, self.inputs, self.nodes, self.model = name, inputs, nodes or [], model
        self.k, self.why, self.views = k or {}, why or {}, views or {}

    def tol(self, target):
        k = self.k.get(target, 1)
        return max(1e-5, float("%.1g" % (3e-6 * math.sqrt(k))))


def relu(op, attrs):
    name, extra = RELU_FUSED[op]
    return name, dict(attrs, **extra)


def node(out, op, ins, relu_fused=False, **attrs):
    if relu_fused:
        op, attrs = relu(op, attrs)
    return (out, op, ins, attrs)


def linear_case(name, m, k, n, relu_fused=False):
    ins = [In("x", [m, k]), In("w", [n, k], scale=1 / 16), In("b", [n], scale=1 / 16)]
    return Case(name, ins, [node("y", "linear", [i.name for i in ins], relu_fused)],
                k={"output": k, "grad.x": n, "grad.w": m, "grad.b": m})


def matmul_case(name, m, k, n):
    return Case(name, [In("a", [m, k]), In("b", [k, n], scale=1 / 16)], [node("y", "matmul", ["a", "b"])],
                k={"output": k, "grad.a": n, "grad.b": m})


IMAGE_VIEWS = {"output": 2, "grad.x": 2, "grad.w": 3}


def conv_case(name, n, c, h, f, kh, stride=1, pad=0, dil=1, groups=1, relu_fused=False):
    ins = [In("x", [n, c, h, h]), In("w", [f, c // groups, kh, kh], scale=1 / 16), In("b", [f], scale=1 / 16)]
    attrs = dict(stride_h=stride, stride_w=stride, pad_h=pad, pad_w=pad, dilation_h=dil, dilation_w=dil,
                 groups=groups)
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    return Case(name, ins, [node("y", "conv2d", ["x", "w", "b"], relu_fused, **attrs)],
                k={"output": c // groups * kh * kh, "grad.x": f // groups * kh * kh, "grad.w": n * ho * ho,
                   "grad.b": n * ho * ho}, views=IMAGE_VIEWS)


def seq_case(name, kind, n, t, i, h):
    gates = 4 if kind == "lstm_seq" else 3
    ins = [In("x", [n, t, i]), In("w_ih", [gates * h, i], scale=1 / 16), In("b_ih", [gates * h], scale=1 / 16),
           In("h0", [n, h], scale=1 / 2)] + ([In("c0", [n, h], scale=1 / 2)] if kind == "lstm_seq" else []) + \
          [In("w_hh", [gates * h, h], scale=1 / 16), In("b_hh", [gates * h], scale=1 / 16),
           In("mask", [t, n], "steps", grad=False)]
    state = ["h0", "c0"] if kind == "lstm_seq" else ["h0"]
    nodes = [node("xw", "linear", ["x", "w_ih", "b_ih"]), node("y", kind, ["xw"] + state + ["w_hh", "b_hh", "mask"])]
    # the longest float32 sum behind an element: a step's (h, or the gates' 4h / 3h), or the batch and steps
    per = {"output": h, "grad.x": gates * h, "grad.w_ih": n * t, "grad.b_ih": n * t, "grad.h0": gates * h,
           "grad.c0": gates * h, "grad.w_hh": n * t, "grad.b_hh": n * t}
    return Case(name, ins, nodes, k=per)


def fold_conv(x, p):
    z = F.conv2d(x, p["layers.0.weight"], p["layers.0.bias"], padding=1)
    z = F.batch_norm(z, p["layers.1.running_mean"], p["layers.1.running_var"], p["layers.1.weight"],
                     p["layers.1.bias"], training=False, eps=1e-5)
    return F.relu(z)


def fold_dense(x, p):
    z = F.linear(x, p["layers.0.weight"], p["layers.0.bias"])
    z = F.batch_norm(z, p["layers.1.running_mean"], p["layers.1.running_var"], p["layers.1.weight"],
                     p["layers.1.bias"], training=False, eps=1e-5)
    return F.relu(z)


def bn_sets(k_shape, units):
    return [("layers.0.weight", k_shape, "uniform", 1 / 16), ("layers.0.bias", [units], "uniform", 1 / 16),
            ("layers.1.weight", [units], "uniform", 1.0), ("layers.1.bias", [units], "uniform", 1 / 2),
            ("layers.1.running_mean", [units], "uniform", 1 / 4), ("layers.1.running_var", [units], "positive", None)]


FAMILIES = {
    "linear": ("linear (x W^T + b, the dense layer) at MLP sizes; backward: dx = dy W (NN), dW = dy^T x (TN)", [
        linear_case("mlp_64x784_512", 64, 784, 512),
        linear_case("mlp_64x784_512_relu", 64, 784, 512, relu_fused=True),
        linear_case("head_100x512_10", 100, 512, 10),
        linear_case("skinny_1x784_512", 1, 784, 512),
        linear_case("skinny_3x784_512_relu", 3, 784, 512, relu_fused=True),
    ]),
    "matmul": ("matmul (A B) at MLP sizes; backward: dA = dY B^T (NT), dB = A^T dY (TN)", [
        matmul_case("mlp_64x784_512", 64, 784, 512),
        matmul_case("skinny_2x784_512", 2, 784, 512),
        matmul_case("skinny_4x784_512", 4, 784, 512),
    ]),
    "conv2d": ("conv2d 32->64 3x3 on 28x28, batch 8, and LeNet's two layers; forward, dx, dw, db", [
        conv_case("c32_64_s1_p1", 8, 32, 28, 64, 3, pad=1),
        conv_case("c32_64_s2_p1_relu", 8, 32, 28, 64, 3, stride=2, pad=1, relu_fused=True),
        conv_case("c32_64_g4_p1", 8, 32, 28, 64, 3, pad=1, groups=4),
        conv_case("c32_64_d2_p1", 8, 32, 28, 64, 3, pad=1, dil=2),
        conv_case("lenet1_1_6_5x5_p2_relu", 8, 1, 28, 6, 5, pad=2, relu_fused=True),
        conv_case("lenet2_6_16_5x5", 8, 6, 14, 16, 5),
    ]),
    "lstm_seq": ("x W_ih^T + b_ih (linear), then lstm_seq with W_hh packed once: N=32, T=16, I=64, H=256, "
                 "uneven lengths",
                 [seq_case("n32_t16_i64_h256", "lstm_seq", 32, 16, 64, 256)]),
    "gru_seq": ("x W_ih^T + b_ih (linear), then gru_seq with W_hh packed once: N=32, T=16, I=64, H=256, uneven lengths",
                [seq_case("n32_t16_i64_h256", "gru_seq", 32, 16, 64, 256)]),
    "bn_fold": ("batch norm folded into the conv2d / dense before it at inference (evaluation mode, no tape), "
                "against torch's eval-mode Conv2d/Linear + BatchNorm + ReLU", [
        Case("conv_bn_relu_32_64", [In("x", [8, 32, 28, 28], grad=False)],
             model=("[net]\ninput = 32, 28, 28\n[convolutional]\nfilters = 64\nsize = 3\npad = 1\n[batchnorm]\n"
                    "[activation]\ntype = relu\n", bn_sets([64, 32, 3, 3], 64), fold_conv), k={"output": 288},
             views=IMAGE_VIEWS),
        Case("dense_bn_relu_784_512", [In("x", [64, 784], grad=False)],
             model=("[net]\ninput = 784\n[dense]\nunits = 512\n[batchnorm]\n[activation]\ntype = relu\n",
                    bn_sets([512, 784], 512), fold_dense), k={"output": 784}),
    ]),
}

# ------------------------------------------------------------------ running a case in torch


def run(case, dtype):
    """{check name: tensor} in dtype: the output and the gradients of the inputs with grad."""
    xs = {i.name: fill(case.name + "/" + i.name, i.shape, i.kind, i.scale).to(dtype) for i in case.inputs}
    if case.model:
        cfg, sets, fn = case.model
        p = {name: fill(case.name + "/" + name, shape, kind, scale).to(dtype) for name, shape, kind, scale in sets}
        with torch.no_grad():
            return {"output": fn(xs["x"], p)}
    for i in case.inputs:
        xs[i.name].requires_grad_(i.grad)
    env = dict(xs)
    for out, op, ins, attrs in case.nodes:
        entry = mg.OPS[op]
        env[out] = entry.fn(dict(entry.defaults, **attrs), *[env[n] for n in ins])
    y = env[case.nodes[-1][0]]
    gy = fill(case.name + "/grad_output", list(y.shape), "uniform", 1.0).to(dtype)
    wrt = [i for i in case.inputs if i.grad]
    grads = torch.autograd.grad(y, [xs[i.name] for i in wrt], gy)
    res = {"output": y.detach()}
    res.update({"grad." + i.name: g.detach() for i, g in zip(wrt, grads)})
    return res


def view_cols(shape, trailing):
    """Columns of the matrix view: the product of the last `trailing` axes (the case says how many: 2 for an image
    [N, C, H, W], 3 for a convolution weight [F, C, kh, kw], the gemm's shape; 1 otherwise).  A view with fewer than
    8 rows or columns (a bias, a skinny product) is replaced by the squarest [R, C] of the flat tensor, so that no
    projection is a copy of a few elements."""
    numel = int(np.prod(shape)) if shape else 1
    cols = int(np.prod(shape[len(shape) - trailing:])) if shape else 1
    if min(cols, numel // cols) < 8:
        cols = max(d for d in range(1, math.isqrt(numel) + 1) if numel % d == 0)
    return cols


class Check:
    """The stored numbers of one tensor, and the criterion applied to another computation of it."""

    def __init__(self, case, target, y64, tol):
        self.name = "%s/%s" % (case.name, target)
        self.target, self.shape, self.tol = target, list(y64.shape), tol
        self.numel = y64.numel()
        self.cols = view_cols(self.shape, case.views.get(target, 1))
        self.rows = self.numel // self.cols
        self.v = weights(self.name + "#v", self.cols)
        self.w = weights(self.name + "#w", self.rows)
        self.pos = positions(self.name + "#s", min(SAMPLES, self.numel), self.numel).astype(np.int64)
        y = y64.reshape(self.rows, self.cols).numpy()
        self.peak = float(np.abs(y.astype(np.float32)).max())
        self.row_proj, self.col_proj = y @ self.v, self.w @ y
        self.samples = y.reshape(-1)[self.pos].astype(np.float32)

    def ratio(self, got):
        """Worst error / allowance of `got` (a float32 computation), as tests/test_golden_big.c computes it."""
        g = got.reshape(self.rows, self.cols).double().numpy()
        floor = max(FLOOR_REL * self.peak, FLOOR_ABS)
        scale = np.maximum(np.minimum(np.abs(g), self.peak), floor) * (self.tol / (1 - self.tol))
        worst = 0.0
        worst = max(worst, (np.abs(g @ self.v - self.row_proj) / (scale @ np.abs(self.v))).max())
        worst = max(worst, (np.abs(self.w @ g - self.col_proj) / (np.abs(self.w) @ scale)).max())
        e = self.samples.astype(np.float64)
        s = g.reshape(-1)[self.pos]
        worst = max(worst, (np.abs(s - e) / (self.tol * np.maximum(np.abs(e), floor))).max())
        return worst

    def lines(self, why):
        out = ["check %s %d %s rows %d cols %d tol %s peak %.9g samples %d" % (
            self.target, len(self.shape), " ".join(map(str, self.shape)), self.rows, self.cols,
            mg.fmt_attr(self.tol), self.peak, len(self.pos))]
        if why:
            out.append("# why: " + why)
        for vals in (self.row_proj, self.col_proj, self.samples):
            txt = ["%.8g" % float(v) for v in vals]
            out += [" ".join(txt[i:i + 10]) for i in range(0, len(txt), 10)]
        return out


def render_case(case):
    ref = run(case, torch.float64)
    f32 = run(case, torch.float32)
    lines = ["case %s" % case.name] + [i.line() for i in case.inputs]
    if case.model:
        cfg, sets, _ = case.model
        lines.append("model %d" % cfg.count("\n"))
        lines += cfg.rstrip("\n").split("\n")
        for name, shape, kind, scale in sets:
            lines.append("set %s %s%s" % (name, kind, " %s" % mg.fmt_attr(scale) if kind == "uniform" else ""))
    for out, op, ins, attrs in case.nodes:
        lines.append(" ".join(["node", out, op] + ins + ["%s=%s" % (k, mg.fmt_attr(v)) for k, v in attrs.items()]))
    worst = {}
    for target, y in ref.items():
        if not torch.isfinite(y).all():
            sys.exit("golden_big: %s/%s is not finite" % (case.name, target))
        tol = case.tol(target)
        why = case.why.get(target) or ("a float32 sum of K = %d terms per element: tol = 3e-6 * sqrt(K)"
                                       % case.k[target] if tol != 1e-5 else None)
        c = Check(case, target, y, tol)
        lines += c.lines(why)
        worst[target] = c.ratio(f32[target])
    lines.append("end")
    return lines, worst


def render(family):
    doc, cases = FAMILIES[family]
    lines = ["# Generated by tools/golden_big.py (torch %s); do not edit, regenerate." % torch.__version__,
             "# " + doc, "golden_big 1"]
    report = []
    for case in cases:
        case_lines, worst = render_case(case)
        lines += case_lines
        report.append((case.name, worst))
    return "\n".join(lines) + "\n", report


def generate(out_dir, quiet=False):
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for family in FAMILIES:
        text, report = render(family)
        with open(os.path.join(out_dir, family + ".txt"), "w") as f:
            f.write(text)
        total += len(text)
        if not quiet:
            print("%-9s %7d bytes" % (family, len(text)))
            for name, worst in report:
                w = max(worst.values())
                print("    %-28s torch-f32 worst %.3f of tol%s  (%s)" % (
                    name, w, "" if w <= 1 else "  EXCEEDS", ", ".join("%s %.2f" % kv for kv in worst.items())))
                if w > 1:
                    sys.exit("golden_big: torch's own float32 exceeds the tolerance of %s: widen it with a reason"
                             % name)
    if not quiet:
        print("total %d bytes" % total)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff with tests/golden/big")
    ap.add_argument("--out", default=OUT_DIR, help="output folder (default tests/golden/big)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if not args.check:
        return generate(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, quiet=True)
        return mg.compare_fixtures(FAMILIES, tmp, args.out)


if __name__ == "__main__":
    sys.exit(main())
