#!/usr/bin/python3
"""PyTorch golden fixtures for every op in dendrite's registry: writes tests/golden/<op>.txt.

    /usr/bin/python3 tools/make_goldens.py            write every fixture, one line per op
    /usr/bin/python3 tools/make_goldens.py --check    regenerate into a temporary folder and diff against
                                                      the committed files (exit status 1 on any difference)
    /usr/bin/python3 tools/make_goldens.py add relu   only these ops

Run it with Debian's python3-torch (/usr/bin/python3).  tests/test_golden.c reads the files, so CI needs no
PyTorch.  These are toy sizes; tools/golden_big.py makes the goldens at real sizes (tests/golden/big/), which a
full run of this script regenerates too.

How the numbers are made.  Inputs are float32 (from a torch.Generator seeded by the op's name, so adding
an op leaves every other file unchanged).  The reference output and input gradients are computed by torch
in float64 from those float32 inputs, for a random float32 upstream gradient grad_output, and rounded to
float32 when written.  So a fixture holds the exact answer to the float32 question, and the comparison
tolerance measures only dendrite's own rounding.

Fixture format (whitespace-separated tokens; '#' starts a comment; numbers are %.9g, exact for float32):

    op <name>
    # why: <reason>                         only when tol is not 1e-5
    tol <relative tolerance>
    case
    attrs <name>=<value> ...                just "attrs" when every attribute takes its default
    input <ndim> <d0> .. <dk> <requires_grad 0|1>
    <numel values>                          one input block per input
    output <ndim> <dims..>
    <values>
    updated <index> <ndim> <dims..>         optional, one per input the forward pass writes into (batch_norm's
    <values>                                running statistics): that input's values after forward
    grad_output <ndim> <dims..>
    <values>
    grad_input <index> <ndim> <dims..>      one per input with requires_grad 1
    <values>
    end

The comparison (here for the float32 self-check, and in tests/test_golden.c) is
    |got - expected| <= tol * max(|expected|, FLOOR_REL * max|expected over the tensor|, FLOOR_ABS)
see FLOOR_* below for why.

Adding an op is one entry in OPS at the bottom: Op(case generator, torch function), where the generator
takes a torch.Generator and returns a list of Case, and the function takes (attrs dict, *inputs) and
returns the output; give the op's attribute defaults, and a tolerance only with a reason (why=...).
Something that is not a differentiable op (an optimiser step, a module with state) can bring its own
entry type: any object with a method render(name, seed) -> (file text, number of cases, worst float32
self-check ratio) can sit in OPS, and the driver writes <name>.txt and reports it like the rest.
"""
import argparse
import difflib
import math
import os
import sys
import tempfile
import zlib

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")

DEFAULT_TOL = 1e-5
# Float32 rounding is relative to the size of the numbers an element was computed from, not to the element
# itself: an element that comes out near 0 by cancellation (a sum, a dot product, softmax's g - <g, y>)
# carries an error relative to its neighbours.  So small elements are compared against a floor tied to the
# tensor's largest value; FLOOR_ABS keeps all-tiny tensors (the gradient of a saturated sigmoid) from
# being held to better than 1e-3 * tol absolute.  tests/test_golden.c uses the same two numbers.
FLOOR_REL = 1e-2
FLOOR_ABS = 1e-3

VALUES_PER_LINE = 8
MAX_NUMEL = 64  # keeps fixtures to a few KB

# ------------------------------------------------------------------ the fixture data model


class In:
    """One input: a float32 tensor and whether the op should return its gradient."""

    def __init__(self, x, grad=True):
        assert x.dtype == torch.float32, "inputs are float32"
        assert x.numel() <= MAX_NUMEL, "keep fixtures small"
        self.x = x.detach().clone()
        self.grad = grad


class Case:
    """One case: inputs and the attributes written into the file (others take the op's defaults)."""

    def __init__(self, inputs, **attrs):
        self.inputs = inputs
        self.attrs = attrs


class Op:
    """A differentiable op: cases(gen) -> [Case]; fn(attrs, *inputs) -> output (float64 in, float64 out)."""

    def __init__(self, cases, fn, defaults=None, tol=DEFAULT_TOL, why=None, doc=""):
        assert (tol == DEFAULT_TOL) or why, "a tolerance other than 1e-5 needs a reason"
        self.cases, self.fn, self.defaults = cases, fn, dict(defaults or {})
        self.tol, self.why, self.doc = tol, why, doc

    def attrs_of(self, case):
        unknown = set(case.attrs) - set(self.defaults)
        assert not unknown, "attributes %s are not in the op's defaults" % sorted(unknown)
        a = dict(self.defaults)
        a.update(case.attrs)
        return a

    def run(self, case, dtype, grad_output=None):
        """Output and input gradients in `dtype`; grad_output is drawn by the caller."""
        xs = [i.x.to(dtype).requires_grad_(i.grad) for i in case.inputs]
        out = self.fn(self.attrs_of(case), *xs)
        grads = []
        if grad_output is not None and any(i.grad for i in case.inputs):
            grads = torch.autograd.grad(out, [x for x in xs if x.requires_grad], grad_output.to(dtype))
        return out.detach(), [g.detach() for g in grads]

    def render(self, name, seed):
        gen = torch.Generator().manual_seed(seed)
        lines = ["# %s" % self.doc] if self.doc else []
        lines.append("op %s" % name)
        if self.why:
            lines.append("# why: %s" % self.why)
        lines.append("tol %s" % fmt_attr(self.tol))
        worst = 0.0
        cases = self.cases(gen)
        for case in cases:
            out64, _ = self.run(case, torch.float64)
            go = torch.randn(out64.shape, generator=gen, dtype=torch.float32)
            out64, grads64 = self.run(case, torch.float64, go)
            check_finite(name, out64, grads64)
            lines.append("case")
            lines.append(" ".join(["attrs"] + ["%s=%s" % (k, fmt_attr(v)) for k, v in case.attrs.items()]))
            for i in case.inputs:
                lines.append("input %s %d" % (fmt_shape(i.x), int(i.grad)))
                lines.extend(fmt_values(i.x))
            lines.append("output %s" % fmt_shape(out64))
            lines.extend(fmt_values(out64))
            lines.extend(self.updated_lines(case))
            lines.append("grad_output %s" % fmt_shape(go))
            lines.extend(fmt_values(go))
            k = 0
            for idx, i in enumerate(case.inputs):
                if i.grad:
                    lines.append("grad_input %d %s" % (idx, fmt_shape(grads64[k])))
                    lines.extend(fmt_values(grads64[k]))
                    k += 1
            lines.append("end")
            # Self-check: torch's own float32 computation must pass the criterion the C test applies,
            # or the tolerance is asking for more than float32 can give.
            out32, grads32 = self.run(case, torch.float32, go)
            for got, exp in [(out32, out64)] + list(zip(grads32, grads64)):
                worst = max(worst, worst_ratio(got, exp.to(torch.float32).double(), self.tol))
        return "\n".join(lines) + "\n", len(cases), worst

    def updated_lines(self, case):
        """`updated` blocks for inputs the forward pass writes into; none for a pure op."""
        return []


class InPlaceOp(Op):
    """An op whose forward pass also writes into some inputs (batch_norm's running statistics): the fixture
    gets an `updated` block with each such input's values after one forward pass, computed in float64."""

    def __init__(self, cases, fn, updated, **kw):
        super().__init__(cases, fn, **kw)
        self.updated = updated  # indices of the inputs forward writes into

    def run(self, case, dtype, grad_output=None):
        # on copies: .to(float32) of a float32 tensor is the tensor itself, and the case must stay as drawn
        copy = Case([In(i.x.clone(), i.grad) for i in case.inputs], **case.attrs)
        return super().run(copy, dtype, grad_output)

    def updated_lines(self, case):
        xs = [i.x.to(torch.float64) for i in case.inputs]  # float64 copies for forward to write into
        with torch.no_grad():
            self.fn(self.attrs_of(case), *xs)
        lines = []
        for idx in self.updated:
            lines.append("updated %d %s" % (idx, fmt_shape(xs[idx])))
            lines.extend(fmt_values(xs[idx]))
        return lines


def fmt_attr(v):
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))  # shortest text that reads back as the same double


def fmt_shape(t):
    return " ".join(str(d) for d in [t.dim()] + list(t.shape))


def fmt_values(t):
    vals = ["%.9g" % float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]
    return [" ".join(vals[i:i + VALUES_PER_LINE]) for i in range(0, len(vals), VALUES_PER_LINE)] or []


def check_finite(name, out, grads):
    for t in [out] + list(grads):
        t32 = t.to(torch.float32)
        if not torch.isfinite(t32).all():
            sys.exit("make_goldens: %s produced a non-finite reference value; change its case" % name)


def worst_ratio(got, exp, tol):
    """Largest |got - exp| / allowed over the tensor (<= 1 passes), the criterion of tests/test_golden.c."""
    got, exp = got.double().reshape(-1), exp.double().reshape(-1)
    if exp.numel() == 0:
        return 0.0
    floor = max(FLOOR_REL * exp.abs().max().item(), FLOOR_ABS)
    allowed = tol * torch.clamp(exp.abs(), min=floor)
    return ((got - exp).abs() / allowed).max().item()


# ------------------------------------------------------------------ input helpers (all float32)


def uniform(gen, shape, lo=-2.0, hi=2.0):
    return torch.rand(shape, generator=gen, dtype=torch.float32) * (hi - lo) + lo


def normal(gen, shape, std=1.0):
    return torch.randn(shape, generator=gen, dtype=torch.float32) * std


def tensor(values, shape=None):
    t = torch.tensor(values, dtype=torch.float32)
    return t.reshape(shape) if shape is not None else t


def away(x, kinks, gap=1e-3):
    """Moves elements closer than gap to a kink out to kink +- gap: the derivative there is a convention."""
    x = x.clone()
    for k in kinks:
        close = (x - k).abs() < gap
        x[close] = torch.where(x[close] < k, torch.tensor(k - gap), torch.tensor(k + gap))
    return x


def near(kinks, offsets=(1e-3, -1e-3, 2e-2, -2e-2)):
    """Points just either side of each kink (never on one)."""
    return tensor([k + o for k in kinks for o in offsets])


def classes(gen, shape, n):
    return torch.randint(0, n, shape, generator=gen).to(torch.float32)


def signs(gen, shape):
    return torch.randint(0, 2, shape, generator=gen).to(torch.float32) * 2 - 1


def prob_rows(gen, shape):
    """Positive rows summing to 1 along the last axis (softmax of a normal draw)."""
    return torch.softmax(normal(gen, shape), dim=-1)


EXTREMES = [-1e4, -500.0, -88.5, -50.0, -20.0, -5.0, -0.5, 0.5, 5.0, 20.0, 50.0, 88.5, 500.0, 1e4]

# ------------------------------------------------------------------ case generators


def binary_cases(lo_b=-2.0, hi_b=2.0, random_sign=False):
    """Same shapes, a row broadcast, broadcasting both ways, and a 0-d b.  b is drawn from [lo_b, hi_b),
    with a random sign if asked (divisors: away from zero, either sign)."""

    def cases(gen):
        shapes = [([3, 4], [3, 4]), ([2, 3, 4], [4]), ([3, 1], [2, 1, 4]), ([2, 3], [])]
        out = []
        for sa, sb in shapes:
            a, b = uniform(gen, sa), uniform(gen, sb, lo_b, hi_b)
            if random_sign:
                b = b * signs(gen, sb)
            out.append(Case([In(a), In(b)]))
        return out

    return cases


def unary_cases(lo, hi, shape=(3, 4), extra=None, **attrs):
    """One random case per attribute set; extra: a list of fixed points appended as a second case."""

    def cases(gen):
        out = [Case([In(uniform(gen, shape, lo, hi))], **attrs)]
        if extra is not None:
            out.append(Case([In(tensor(extra))], **attrs))
        return out

    return cases


def join(*gens):
    """Concatenates case generators (each sees the same generator in turn)."""
    return lambda gen: [c for g in gens for c in g(gen)]


def activation_cases(kinks=(), lo=-4.0, hi=4.0, extremes=False, **attrs):
    """A random [3, 4] (moved off kinks), points either side of each kink, and |x| up to 1e4 if asked."""

    def cases(gen):
        out = [Case([In(away(uniform(gen, [3, 4], lo, hi), kinks))], **attrs)]
        if kinks:
            out.append(Case([In(near(kinks))], **attrs))
        if extremes:
            out.append(Case([In(tensor(EXTREMES))], **attrs))
        return out

    return cases


def reduce_cases(ties):
    def cases(gen):
        x = lambda: uniform(gen, [2, 3, 4])
        out = [
            Case([In(x())], axes=0, keepdim=0),
            Case([In(x())], axes=0, keepdim=1),
            Case([In(x())], axes=1, keepdim=0),
            Case([In(x())], axes=2, keepdim=1),
            Case([In(x())], axes=5, keepdim=0),
            Case([In(x())], axes=4, keepdim=1),
            Case([In(uniform(gen, [5]))], axes=1, keepdim=0),
        ]
        if ties:
            # row 0 has its maximum twice, row 2 three times; the whole tensor has a tie at 1.5
            t = tensor([[0.5, 1.5, -1.0, 1.5], [0.25, -0.5, 1.0, 0.75], [1.25, 1.25, 1.25, -2.0]])
            out.append(Case([In(t)], axes=2, keepdim=0))
            out.append(Case([In(t)], axes=0, keepdim=0))
        return out

    return cases


def dims_of(mask, ndim):
    return [i for i in range(ndim) if mask == 0 or (mask >> i) & 1]


def reduce_fn(torch_fn):
    def fn(a, x):
        return torch_fn(x, dim=dims_of(int(a["axes"]), x.dim()), keepdim=bool(a["keepdim"]))

    return fn


def reshape_cases(gen):
    x = lambda: uniform(gen, [2, 3, 4])
    return [
        Case([In(x())], ndim=2, d0=6, d1=4),
        Case([In(x())], ndim=3, d0=4, d1=-1, d2=2),
        Case([In(x())], ndim=1, d0=-1),
        Case([In(uniform(gen, [12]))], ndim=4, d0=2, d1=1, d2=3, d3=2),
    ]


def reshape_fn(a, x):
    return x.reshape([int(a["d%d" % i]) for i in range(int(a["ndim"]))])


def permute_cases(gen):
    return [
        Case([In(uniform(gen, [3, 4]))], p0=1, p1=0),
        Case([In(uniform(gen, [2, 3, 4]))], p0=2, p1=0, p2=1),
        Case([In(uniform(gen, [2, 1, 3, 2]))], p0=3, p1=1, p2=0, p3=2),
    ]


def permute_fn(a, x):
    return x.permute([int(a["p%d" % i]) for i in range(x.dim())])


def slice_cases(gen):
    return [
        Case([In(uniform(gen, [4, 5]))], axis=1, start=1, end=4, step=1),
        Case([In(uniform(gen, [4, 5]))], axis=0, start=-3, end=-1, step=1),
        Case([In(uniform(gen, [2, 6, 3]))], axis=1, start=0, end=6, step=2),
        Case([In(uniform(gen, [2, 6, 3]))], axis=2, start=1, end=3, step=1),
        Case([In(uniform(gen, [7]))], axis=0, start=1, end=-1, step=3),
    ]


def slice_fn(a, x):
    idx = [slice(None)] * x.dim()
    idx[int(a["axis"])] = slice(int(a["start"]), int(a["end"]), int(a["step"]))
    return x[tuple(idx)]


def concat_cases(gen):
    return [
        Case([In(uniform(gen, [2, 3])), In(uniform(gen, [2, 2]))], axis=1),
        Case([In(uniform(gen, [1, 4])), In(uniform(gen, [2, 4])), In(uniform(gen, [3, 4]))], axis=0),
        Case([In(uniform(gen, [2, 2, 3])), In(uniform(gen, [2, 1, 3])), In(uniform(gen, [2, 3, 3]))], axis=1),
        Case([In(uniform(gen, [2, 3])), In(uniform(gen, [2, 3]), grad=False)], axis=0),
    ]


def matmul_cases(gen):
    return [
        Case([In(uniform(gen, [3, 4])), In(uniform(gen, [4, 5]))]),
        Case([In(uniform(gen, [2, 3, 4])), In(uniform(gen, [2, 4, 5]))]),
        Case([In(uniform(gen, [2, 3, 4])), In(uniform(gen, [4, 5]))]),
    ]


def linear_cases(gen):
    return [
        Case([In(uniform(gen, [3, 4])), In(uniform(gen, [5, 4])), In(uniform(gen, [5]))]),
        Case([In(uniform(gen, [2, 3, 4])), In(uniform(gen, [5, 4])), In(uniform(gen, [5]))]),
        Case([In(uniform(gen, [3, 4])), In(uniform(gen, [5, 4]))]),
    ]


def linear_relu_cases(gen):
    return [
        Case([In(uniform(gen, [4, 6])), In(uniform(gen, [5, 6])), In(uniform(gen, [5]))]),
        Case([In(uniform(gen, [2, 3, 4])), In(uniform(gen, [5, 4]))]),
    ]


def linear_fn(a, x, w, b=None):
    return F.linear(x, w, b)


def linear_relu_fn(a, x, w, b=None):
    return F.relu(F.linear(x, w, b))


def softmax_cases(gen):
    extreme = tensor([[1e4, 0.0, -1e4, 9999.5], [-1e4, -9999.0, -1e4, -9998.0], [88.5, -88.5, 500.0, 499.0]])
    return [
        Case([In(uniform(gen, [2, 3, 4], -3, 3))], axis=0),
        Case([In(uniform(gen, [2, 3, 4], -3, 3))], axis=1),
        Case([In(uniform(gen, [2, 3, 4], -3, 3))], axis=-1),
        Case([In(uniform(gen, [3, 5], -3, 3))], axis=1),
        Case([In(extreme)], axis=-1),
        Case([In(extreme)], axis=0),
    ]


def prelu_cases(gen):
    x = lambda: away(uniform(gen, [2, 3, 4], -3, 3), [0.0])
    return [
        Case([In(x()), In(uniform(gen, [1], 0.05, 0.5))]),
        Case([In(x()), In(uniform(gen, [3], 0.05, 0.5))]),
        Case([In(near([0.0]).reshape(1, 4)), In(tensor([0.25]))]),
    ]


def swish_cases(gen):
    return [
        Case([In(uniform(gen, [3, 4], -4, 4)), In(tensor([1.3]))]),
        Case([In(uniform(gen, [2, 5], -4, 4)), In(tensor([0.6]))]),
        Case([In(tensor(EXTREMES[2:-2])), In(tensor([1.0]))]),
    ]


def hard_sigmoid_fn(a, x):
    return torch.clamp(a["slope"] * x + a["offset"], 0.0, 1.0)


def batch_norm_cases(gen):
    """x [N, C, ...], gamma, beta (with gradients), running_mean, running_var (updated in training)."""

    def case(x, gamma_lo=0.5, **attrs):
        c = x.shape[1]
        return Case([In(x), In(uniform(gen, [c], gamma_lo, 1.5)), In(uniform(gen, [c], -1, 1)),
                     In(uniform(gen, [c], -1, 1), grad=False), In(uniform(gen, [c], 0.5, 2), grad=False)], **attrs)

    return [
        case(uniform(gen, [4, 3])),
        case(uniform(gen, [2, 3, 2, 2]), momentum=0.3),
        case(uniform(gen, [3, 2, 4]), gamma_lo=-1.5, eps=1e-3),
        # a large mean: the variance must not cancel (torch's own float32 misses tol here, so the summary
        # line flags it; dendrite's double two-pass sums do not)
        case(50 + normal(gen, [5, 3], 0.5)),
        case(uniform(gen, [4, 3]), training=0),
        case(uniform(gen, [2, 3, 2, 2]), gamma_lo=-1.5, training=0, eps=0.01),
    ]


def batch_norm_fn(a, x, gamma, beta, running_mean, running_var):
    return F.batch_norm(x, running_mean, running_var, gamma, beta, bool(a["training"]), a["momentum"], a["eps"])


# ------------------------------------------------------------------ convolution and pooling


def conv2d_cases(gen):
    """stride {1, 2} x padding {0, 1} x dilation {1, 2} x groups {1, 2, depthwise}: a spread of the grid,
    with and without bias, square and non-square kernels, the 1x1 path, and an input without a gradient."""
    u = lambda *shape: uniform(gen, list(shape))
    return [
        Case([In(u(2, 2, 4, 4)), In(u(3, 2, 3, 3)), In(u(3))]),
        Case([In(u(1, 2, 5, 5)), In(u(3, 2, 3, 3))], stride_h=2, stride_w=2, pad_h=1, pad_w=1),
        Case([In(u(1, 1, 7, 7)), In(u(2, 1, 3, 3)), In(u(2))], dilation_h=2, dilation_w=2, pad_h=1, pad_w=1),
        Case([In(u(1, 2, 5, 6)), In(u(2, 2, 2, 3)), In(u(2))], stride_w=2, pad_h=1, dilation_h=2),
        Case([In(u(1, 4, 4, 4)), In(u(4, 2, 2, 2)), In(u(4))], groups=2, pad_h=1, pad_w=1),
        Case([In(u(1, 4, 5, 3)), In(u(2, 2, 3, 2))], groups=2, stride_h=2, dilation_w=2, pad_w=1),
        Case([In(u(1, 3, 4, 5)), In(u(3, 1, 3, 3)), In(u(3))], groups=3, pad_h=1, pad_w=1),  # depthwise
        Case([In(u(1, 2, 6, 5)), In(u(2, 1, 2, 2))], groups=2, stride_h=2, stride_w=2, dilation_h=2, dilation_w=2,
             pad_h=1, pad_w=1),  # depthwise, everything at once
        Case([In(u(1, 2, 4, 4)), In(u(4, 1, 3, 3)), In(u(4))], groups=2, pad_h=1, pad_w=1),  # depth multiplier 2
        Case([In(u(2, 3, 3, 3)), In(u(4, 3, 1, 1)), In(u(4))]),  # 1x1, two images in one gemm
        Case([In(u(1, 3, 4, 4)), In(u(4, 3, 1, 1)), In(u(4))]),  # 1x1, one image: no im2col
        Case([In(u(1, 2, 5, 5)), In(u(3, 2, 1, 1))], stride_h=2, stride_w=2),  # 1x1 strided: im2col
        Case([In(u(2, 2, 4, 4), grad=False), In(u(3, 2, 3, 3)), In(u(3))], pad_h=1, pad_w=1),
    ]


def conv2d_relu_cases(gen):
    u = lambda *shape: uniform(gen, list(shape))
    return [
        Case([In(u(1, 2, 5, 5)), In(u(3, 2, 3, 3)), In(u(3))], pad_h=1, pad_w=1),  # one image
        Case([In(u(2, 3, 3, 3)), In(u(4, 3, 2, 2)), In(u(4))]),  # images sharing a gemm
    ]


def conv2d_fn(a, x, w, b=None):
    i = lambda name: int(a[name])
    return F.conv2d(x, w, b, stride=(i("stride_h"), i("stride_w")), padding=(i("pad_h"), i("pad_w")),
                    dilation=(i("dilation_h"), i("dilation_w")), groups=i("groups"))


def conv2d_relu_fn(a, x, w, b=None):
    return F.relu(conv2d_fn(a, x, w, b))


CONV_DEFAULTS = {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0, "dilation_h": 1, "dilation_w": 1, "groups": 1}
POOL_DEFAULTS = {"kernel_h": 2, "kernel_w": 2, "stride_h": 0, "stride_w": 0, "pad_h": 0, "pad_w": 0}
# ties in every 2x2 window, both at the window's first element and later in it
POOL_TIES = tensor([[1, 1, 0, 2, 2], [1, 0, 2, 2, -1], [0, 3, 3, 1, 1], [3, 3, 1, 1, -1]], [1, 1, 4, 5])


def pool_cases(tie):
    """Default 2x2, overlapping 3x3 stride 2 with padding, non-square with per-axis stride and padding,
    3x3 stride 1, all-negative values beside the padding, and ties (tie: the tensor that has them)."""

    def cases(gen):
        u = lambda *shape: uniform(gen, list(shape), -5, 5)
        return [
            Case([In(u(2, 2, 4, 4))]),
            Case([In(u(1, 2, 5, 5))], kernel_h=3, kernel_w=3, stride_h=2, stride_w=2, pad_h=1, pad_w=1),
            Case([In(u(1, 2, 5, 6))], kernel_h=2, kernel_w=3, stride_h=1, stride_w=2, pad_w=1),
            Case([In(u(1, 1, 5, 5))], kernel_h=3, kernel_w=3, stride_h=1, stride_w=1),
            Case([In(uniform(gen, [1, 2, 4, 4], -3, -1))], kernel_h=3, kernel_w=3, stride_h=2, stride_w=2, pad_h=1,
                 pad_w=1),
            Case([In(tie)]),
            Case([In(tie)], stride_h=1, stride_w=1),
            Case([In(tie)], kernel_h=3, kernel_w=3, stride_h=1, stride_w=2, pad_h=1, pad_w=1),
        ]

    return cases


def pool_fn(torch_pool):
    def fn(a, x):
        kh, kw = int(a["kernel_h"]), int(a["kernel_w"])
        sh, sw = int(a["stride_h"]) or kh, int(a["stride_w"]) or kw  # 0: the kernel size, torch's default
        return torch_pool(x, (kh, kw), (sh, sw), (int(a["pad_h"]), int(a["pad_w"])))

    return fn


def global_pool_cases(gen):
    # plane 0 has its maximum twice, plane 1 three times
    tie = tensor([[[1, 2, 0], [2, -1, 1]], [[0.5, 0.5, 0.5], [-2, 0, 0.5]]], [1, 2, 2, 3])
    return [
        Case([In(uniform(gen, [2, 3, 3, 3], -5, 5))]),
        Case([In(uniform(gen, [1, 2, 1, 5], -5, 5))]),
        Case([In(tie)]),
    ]


# ------------------------------------------------------------------ losses

REDUCTIONS = {0: "mean", 1: "sum", 2: "none"}


def loss_cases(make):
    """make(gen, reduction) -> (pred, target, attrs), drawn afresh for each reduction (mean, sum, none)."""

    def cases(gen):
        out = []
        for r in (0, 1, 2):
            pred, target, attrs = make(gen, r)
            out.append(Case([In(pred), In(target, grad=False)], reduction=r, **attrs))
        return out

    return cases


def reduce_loss(per_elem, reduction):
    r = REDUCTIONS[int(reduction)]
    return per_elem.mean() if r == "mean" else per_elem.sum() if r == "sum" else per_elem


def l1_make(gen, r):
    p, t = uniform(gen, [3, 4]), uniform(gen, [3, 4])
    return t + away(p - t, [0.0], 1e-2), t, {}


def huber_make(delta):
    def make(gen, r):
        t = uniform(gen, [3, 4])
        d = away(away(uniform(gen, [3, 4], -2.5, 2.5), [-delta, delta], 2e-2), [0.0], 1e-3)
        return t + d, t, ({"delta": delta} if delta != 1.0 else {})

    return make


def cross_entropy_prob_make(gen, r):
    p = prob_rows(gen, [4, 3])
    t = prob_rows(gen, [4, 3])
    return p, t, {}


def cross_entropy_prob_fn(a, p, t):
    return reduce_loss(-(t * torch.log(p)).sum(1), a["reduction"])


def bce_make(gen, r):
    p = uniform(gen, [3, 4], 0.02, 0.98)
    p[0, :2] = tensor([1e-4, 0.999])
    t = uniform(gen, [3, 4], 0.0, 1.0)
    t[1] = torch.randint(0, 2, [4], generator=gen).to(torch.float32)
    return p, t, {}


def bce_logits_make(gen, r):
    # with reduction sum, |x| up to 1e4: log(1 + e^-|x|) must not overflow, nor the gradient lose sigmoid(x)
    x = tensor(EXTREMES[:6] + EXTREMES[-6:]).reshape(3, 4) if r == 1 else uniform(gen, [3, 4], -4, 4)
    t = uniform(gen, [3, 4], 0.0, 1.0)
    t[0, :2] = tensor([0.0, 1.0])
    return x, t, {}


def hinge_make(gen, r):
    t = signs(gen, [3, 4])
    margin = away(uniform(gen, [3, 4], -1.5, 2.5), [0.0], 2e-2)  # 1 - t*p
    return (1 - margin) * t, t, {}


def hinge_fn(a, p, t):
    return reduce_loss(torch.clamp(1 - t * p, min=0), a["reduction"])


def multi_margin_make(margin):
    def make(gen, r):
        p = uniform(gen, [4, 5], -2, 2)
        t = classes(gen, [4], 5)
        # keep margin - x[y] + x[i] off 0: nudge x[i] where it sits on the kink
        for n in range(4):
            y = int(t[n])
            for i in range(5):
                if i != y and abs(margin - p[n, y] + p[n, i]) < 2e-2:
                    p[n, i] += 5e-2
        return p, t, ({"margin": margin} if margin != 1.0 else {})

    return make


def multi_margin_fn(a, p, t):
    return F.multi_margin_loss(p, t.long(), p=1, margin=a["margin"], reduction=REDUCTIONS[int(a["reduction"])])


def softmax_ce_cases(gen):
    out = []
    for r in (0, 1, 2):
        out.append(Case([In(normal(gen, [4, 5], 2.0)), In(classes(gen, [4], 5), grad=False)], reduction=r))
        out.append(Case([In(normal(gen, [2, 3, 4], 2.0)), In(classes(gen, [2, 4], 3), grad=False)], reduction=r))
    extreme = tensor([[1e4, 0.0, -1e4, 9999.5], [-1e4, -9999.0, -1e4, -9998.0], [88.5, -88.5, 500.0, 499.0]])
    out.append(Case([In(extreme), In(tensor([2.0, 0.0, 1.0]), grad=False)], reduction=0))
    out.append(Case([In(extreme), In(tensor([3.0, 3.0, 2.0]), grad=False)], reduction=2))
    return out


def softmax_ce_fn(a, x, t):
    return F.cross_entropy(x, t.long(), reduction=REDUCTIONS[int(a["reduction"])])


def softmax_ce_soft_make(gen, r):
    return normal(gen, [4, 5], 2.0), prob_rows(gen, [4, 5]), {}


def softmax_ce_soft_fn(a, x, t):
    return F.cross_entropy(x, t, reduction=REDUCTIONS[int(a["reduction"])])


def nll_make(gen, r):
    return torch.log_softmax(normal(gen, [4, 5], 2.0), dim=1), classes(gen, [4], 5), {}


def nll_fn(a, logp, t):
    return F.nll_loss(logp, t.long(), reduction=REDUCTIONS[int(a["reduction"])])


def loss_fn(f, *names):
    """A torch.nn.functional loss called with reduction= and the named attributes as keywords."""
    return lambda a, p, t: f(p, t, reduction=REDUCTIONS[int(a["reduction"])], **{n: a[n] for n in names})


# ------------------------------------------------------------------ embedding and recurrent cells (src/ops/rnn.c)


def embedding_cases(gen):
    # the second case looks row 2 up twice: its gradient is the sum of both
    return [Case([In(classes(gen, [2, 3], 5), grad=False), In(normal(gen, [5, 4]))]),
            Case([In(tensor([0.0, 2.0, 2.0, 1.0]), grad=False), In(normal(gen, [3, 2]))])]


CELL_MASK = [1.0, 0.0, 1.0]  # row 1 is a padding step: it keeps its state


def cell_cases(gates, n_state, **attrs):
    """xw [3, G*H], state(s) [3, H], w_hh [G*H, H], b_hh [G*H], mask [3] (no gradient), H = 3."""

    def cases(gen):
        h = 3
        ins = [In(uniform(gen, [3, gates * h], -1, 1))]
        ins += [In(uniform(gen, [3, h], -1, 1)) for _ in range(n_state)]
        ins += [In(uniform(gen, [gates * h, h], -1, 1)), In(uniform(gen, [gates * h], -0.5, 0.5)),
                In(tensor(CELL_MASK), grad=False)]
        return [Case(ins, **attrs)]

    return cases


def keep_masked(new, old, mask):
    return torch.where(mask.reshape(-1, 1) != 0, new, old)


def identity_ih(xw):
    """torch's cells take x and W_ih; the op takes xw = x W_ihᵀ + b_ih, which is x = xw, W_ih = I, b_ih = 0."""
    g = xw.shape[1]
    return torch.eye(g, dtype=xw.dtype), torch.zeros(g, dtype=xw.dtype)


def rnn_cell_fn(a, xw, h, w, b, mask):
    w_ih, b_ih = identity_ih(xw)
    cell = torch.rnn_relu_cell if int(a["nonlinearity"]) else torch.rnn_tanh_cell
    return keep_masked(cell(xw, h, w_ih, w, b_ih, b), h, mask)


def lstm_cell_fn(a, xw, h, c, w, b, mask):
    w_ih, b_ih = identity_ih(xw)
    h2, c2 = torch.lstm_cell(xw, (h, c), w_ih, w, b_ih, b)
    return torch.cat([keep_masked(h2, h, mask), keep_masked(c2, c, mask)], 1)


def gru_cell_fn(a, xw, h, w, b, mask):
    w_ih, b_ih = identity_ih(xw)
    return keep_masked(torch.gru_cell(xw, h, w_ih, w, b_ih, b), h, mask)


def seq_cases(gates, n_state, hid, mask, *attr_sets):
    """xw [N, T, G*H], state(s) [N, H], w_hh, b_hh, mask [T, N] (no gradient): some rows pad their last
    steps, as a batch of uneven sequences would."""

    def cases(gen):
        out = []
        steps, n = len(mask), len(mask[0])
        for attrs in attr_sets:
            ins = [In(uniform(gen, [n, steps, gates * hid], -1, 1))]
            ins += [In(uniform(gen, [n, hid], -1, 1)) for _ in range(n_state)]
            ins += [In(uniform(gen, [gates * hid, hid], -1, 1)), In(uniform(gen, [gates * hid], -0.5, 0.5)),
                    In(tensor(mask), grad=False)]
            out.append(Case(ins, **attrs))
        return out

    return cases


SEQ_MASK3 = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # [T, N]: 3 rows of 4, 3, 2 steps
SEQ_MASK2 = [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]  # 2 rows of 3 and 2 steps


def seq_run(step, xw, states, mask, reverse):
    """Runs step(x_t, states) -> new states over t (backwards when reverse), keeping a row's states where
    mask[t, row] is 0; returns each state stacked over time: [N, T, H] per state."""
    steps = xw.shape[1]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    seen = [[None] * steps for _ in states]
    for t in order:
        new = step(xw[:, t], states)
        states = [keep_masked(a, b, mask[t]) for a, b in zip(new, states)]
        for k, st in enumerate(states):
            seen[k][t] = st
    return [torch.stack(s, 1) for s in seen]


def rnn_seq_fn(a, xw, h, w, b, mask):
    w_ih, b_ih = identity_ih(xw[:, 0])
    cell = torch.rnn_relu_cell if int(a["nonlinearity"]) else torch.rnn_tanh_cell
    return seq_run(lambda x, st: [cell(x, st[0], w_ih, w, b_ih, b)], xw, [h], mask, int(a["reverse"]))[0]


def lstm_seq_fn(a, xw, h, c, w, b, mask):
    w_ih, b_ih = identity_ih(xw[:, 0])
    hs, cs = seq_run(lambda x, st: list(torch.lstm_cell(x, (st[0], st[1]), w_ih, w, b_ih, b)), xw, [h, c], mask,
                     int(a["reverse"]))
    return torch.stack([hs, cs], 0)


def gru_seq_fn(a, xw, h, w, b, mask):
    w_ih, b_ih = identity_ih(xw[:, 0])
    return seq_run(lambda x, st: [torch.gru_cell(x, st[0], w_ih, w, b_ih, b)], xw, [h], mask, int(a["reverse"]))[0]


# ------------------------------------------------------------------ the table: op name -> how to make its golden

R = {"reduction": 0}
INF = float("inf")

OPS = {
    # elementwise, broadcasting
    "add": Op(binary_cases(), lambda a, x, y: x + y, doc="y = a + b"),
    "sub": Op(binary_cases(), lambda a, x, y: x - y, doc="y = a - b"),
    "mul": Op(binary_cases(), lambda a, x, y: x * y, doc="y = a * b"),
    "div": Op(binary_cases(0.5, 2.0, random_sign=True), lambda a, x, y: x / y, doc="y = a / b, |b| >= 0.5"),
    # unary maths
    "exp": Op(unary_cases(-5, 5, extra=[-20.0, -0.001, 0.0, 0.001, 10.0, 30.0]), lambda a, x: torch.exp(x)),
    "log": Op(unary_cases(0.05, 5, extra=[1e-6, 0.999, 1.001, 1e4]), lambda a, x: torch.log(x)),
    "sqrt": Op(unary_cases(0.05, 5, extra=[1e-6, 0.25, 1e4]), lambda a, x: torch.sqrt(x)),
    "abs": Op(activation_cases(kinks=[0.0]), lambda a, x: torch.abs(x)),
    "pow": Op(join(unary_cases(-2, 2, exponent=2), unary_cases(-2, 2, exponent=3),
                   unary_cases(0.2, 3, exponent=-1.5), unary_cases(0.2, 3, exponent=0.5),
                   unary_cases(0.2, 3, shape=(5,))),
              lambda a, x: torch.pow(x, a["exponent"]), defaults={"exponent": 2}),
    "clamp": Op(join(activation_cases(kinks=[-0.5, 0.7], lo=-2, hi=2, min=-0.5, max=0.7),
                     activation_cases(kinks=[0.25], lo=-2, hi=2, min=0.25)),
                lambda a, x: torch.clamp(x, min=a["min"] if a["min"] > -INF else None,
                                         max=a["max"] if a["max"] < INF else None),
                defaults={"min": -INF, "max": INF}),
    "scale": Op(join(unary_cases(-3, 3, factor=-1.7), unary_cases(-3, 3, factor=0.001)),
                lambda a, x: a["factor"] * x, defaults={"factor": 1}),
    "add_scalar": Op(join(unary_cases(-3, 3, value=0.3), unary_cases(-3, 3, value=-1000)),
                     lambda a, x: x + a["value"], defaults={"value": 0}),
    # reductions: axes is a bit mask (0 = every axis)
    "sum": Op(reduce_cases(False), reduce_fn(torch.sum), defaults={"axes": 0, "keepdim": 0}),
    "mean": Op(reduce_cases(False), reduce_fn(torch.mean), defaults={"axes": 0, "keepdim": 0}),
    "max": Op(reduce_cases(True), reduce_fn(torch.amax), defaults={"axes": 0, "keepdim": 0},
              doc="torch.amax: the gradient is shared evenly among tied maxima"),
    # shape
    "reshape": Op(reshape_cases, reshape_fn, defaults={"ndim": 0, **{"d%d" % i: 0 for i in range(6)}}),
    "permute": Op(permute_cases, permute_fn, defaults={"p%d" % i: i for i in range(6)}),
    "slice": Op(slice_cases, slice_fn, defaults={"axis": 0, "start": 0, "end": 0, "step": 1}),
    "concat": Op(concat_cases, lambda a, *xs: torch.cat(xs, int(a["axis"])), defaults={"axis": 0}),
    "contiguous": Op(unary_cases(-2, 2, shape=(3, 4)), lambda a, x: x.clone()),
    # matrix products
    "matmul": Op(matmul_cases, lambda a, x, y: torch.matmul(x, y)),
    "linear": Op(linear_cases, linear_fn),
    "linear_relu": Op(linear_relu_cases, linear_relu_fn, doc="relu(linear(x, W, b)): the fused row"),
    # activations
    "identity": Op(unary_cases(-3, 3), lambda a, x: x.clone()),
    "sigmoid": Op(activation_cases(extremes=True), lambda a, x: torch.sigmoid(x)),
    "tanh": Op(activation_cases(extremes=True), lambda a, x: torch.tanh(x)),
    "relu": Op(activation_cases(kinks=[0.0]), lambda a, x: F.relu(x)),
    "leaky_relu": Op(join(activation_cases(kinks=[0.0]), activation_cases(kinks=[0.0], alpha=0.2)),
                     lambda a, x: F.leaky_relu(x, a["alpha"]), defaults={"alpha": 0.01}),
    "softmax": Op(softmax_cases, lambda a, x: torch.softmax(x, int(a["axis"])), defaults={"axis": -1}),
    "log_softmax": Op(softmax_cases, lambda a, x: torch.log_softmax(x, int(a["axis"])), defaults={"axis": -1}),
    "prelu": Op(prelu_cases, lambda a, x, w: F.prelu(x, w)),
    "elu": Op(join(activation_cases(kinks=[0.0]), activation_cases(kinks=[0.0], alpha=0.5)),
              lambda a, x: F.elu(x, a["alpha"]), defaults={"alpha": 1.0}),
    "swish": Op(swish_cases, lambda a, x, beta: x * torch.sigmoid(beta * x), doc="x * sigmoid(beta * x)"),
    "mish": Op(activation_cases(lo=-5, hi=5), lambda a, x: F.mish(x)),
    "gelu": Op(join(activation_cases(lo=-5, hi=5, approximate=0), activation_cases(lo=-5, hi=5, approximate=1)),
               lambda a, x: F.gelu(x, approximate="tanh" if int(a["approximate"]) else "none"),
               defaults={"approximate": 0}),
    "softplus": Op(join(activation_cases(extremes=True),
                        activation_cases(kinks=[5.0], extremes=True, beta=2, threshold=10)),
                   lambda a, x: F.softplus(x, a["beta"], a["threshold"]), defaults={"beta": 1, "threshold": 20}),
    "selu": Op(activation_cases(kinks=[0.0]), lambda a, x: F.selu(x)),
    "hard_sigmoid": Op(join(activation_cases(kinks=[-1.0, 1.0], lo=-3, hi=3),
                            activation_cases(kinks=[-3.0, 3.0], lo=-5, hi=5, slope=1 / 6, offset=0.5)),
                       hard_sigmoid_fn, defaults={"slope": 0.5, "offset": 0.5},
                       doc="clamp(slope*x + offset, 0, 1)"),
    "hard_tanh": Op(join(activation_cases(kinks=[-1.0, 1.0], lo=-3, hi=3),
                         activation_cases(kinks=[-0.5, 2.0], lo=-3, hi=3, min=-0.5, max=2)),
                    lambda a, x: F.hardtanh(x, a["min"], a["max"]), defaults={"min": -1, "max": 1}),
    # losses: input 0 the prediction, input 1 the target (no gradient); reduction 0 mean, 1 sum, 2 none
    "mse_loss": Op(loss_cases(lambda g, r: (uniform(g, [3, 4]), uniform(g, [3, 4]), {})), loss_fn(F.mse_loss),
                   defaults=R),
    "l1_loss": Op(loss_cases(l1_make), loss_fn(F.l1_loss), defaults=R),
    "huber_loss": Op(join(loss_cases(huber_make(1.0)), loss_cases(huber_make(0.5))),
                     loss_fn(F.huber_loss, "delta"), defaults={**R, "delta": 1.0}),
    "cross_entropy_prob": Op(loss_cases(cross_entropy_prob_make), cross_entropy_prob_fn, defaults=R,
                             doc="(-(t * log p)).sum(1), then reduced over N"),
    "bce_loss": Op(loss_cases(bce_make), loss_fn(F.binary_cross_entropy), defaults=R),
    "bce_with_logits": Op(loss_cases(bce_logits_make), loss_fn(F.binary_cross_entropy_with_logits), defaults=R),
    "hinge_loss": Op(loss_cases(hinge_make), hinge_fn, defaults=R, doc="clamp(1 - t*p, min=0), then reduced"),
    "multi_margin_loss": Op(join(loss_cases(multi_margin_make(1.0)), loss_cases(multi_margin_make(0.5))),
                            multi_margin_fn, defaults={**R, "margin": 1.0}, doc="torch MultiMarginLoss, p=1"),
    "softmax_cross_entropy": Op(softmax_ce_cases, softmax_ce_fn, defaults=R, doc="torch CrossEntropyLoss"),
    "softmax_cross_entropy_soft": Op(loss_cases(softmax_ce_soft_make), softmax_ce_soft_fn, defaults=R,
                                     doc="torch CrossEntropyLoss with probability targets"),
    "nll_loss": Op(loss_cases(nll_make), nll_fn, defaults=R, doc="torch NLLLoss on log_softmax outputs"),
    # convolution and pooling, NCHW; pooling stride 0 means the kernel size
    "conv2d": Op(conv2d_cases, conv2d_fn, defaults=CONV_DEFAULTS),
    "conv2d_relu": Op(conv2d_relu_cases, conv2d_relu_fn, defaults=CONV_DEFAULTS, doc="relu(conv2d(...)): the fused row"),
    "max_pool2d": Op(pool_cases(POOL_TIES), pool_fn(F.max_pool2d), defaults=POOL_DEFAULTS,
                     doc="ties: the gradient goes to the first maximal element of the window"),
    "avg_pool2d": Op(pool_cases(POOL_TIES), pool_fn(F.avg_pool2d), defaults=POOL_DEFAULTS,
                     doc="count_include_pad=True: always divided by kernel_h * kernel_w"),
    "min_pool2d": Op(pool_cases(-POOL_TIES), pool_fn(lambda x, *args: -F.max_pool2d(-x, *args)),
                     defaults=POOL_DEFAULTS, doc="-max_pool2d(-x): ties go to the first minimal element"),
    "global_avg_pool2d": Op(global_pool_cases, lambda a, x: F.adaptive_avg_pool2d(x, 1)),
    "global_max_pool2d": Op(global_pool_cases, lambda a, x: F.adaptive_max_pool2d(x, 1),
                            doc="ties: the gradient goes to the first maximal element of the plane"),
    # normalisation: inputs x, gamma, beta, running_mean, running_var; training writes the running statistics
    "batch_norm": InPlaceOp(batch_norm_cases, batch_norm_fn, updated=[3, 4],
                            defaults={"training": 1, "momentum": 0.1, "eps": 1e-5},
                            doc="torch.nn.functional.batch_norm; `updated` holds the running statistics after forward"),
    # embedding and recurrent cells: xw is the input's projection; mask 0 keeps the state (padding step)
    "embedding": Op(embedding_cases, lambda a, i, w: F.embedding(i.long(), w), doc="torch.nn.functional.embedding"),
    "rnn_cell": Op(join(cell_cases(1, 1, nonlinearity=0), cell_cases(1, 1, nonlinearity=1)), rnn_cell_fn,
                   defaults={"nonlinearity": 0}, doc="torch.rnn_tanh_cell / rnn_relu_cell with W_ih = I, b_ih = 0"),
    "lstm_cell": Op(cell_cases(4, 2), lstm_cell_fn, doc="torch.lstm_cell with W_ih = I, b_ih = 0; output [h' | c']"),
    "gru_cell": Op(cell_cases(3, 1), gru_cell_fn, doc="torch.gru_cell with W_ih = I, b_ih = 0"),
    "rnn_seq": Op(seq_cases(1, 1, 3, SEQ_MASK3, {"nonlinearity": 0}, {"nonlinearity": 1, "reverse": 1}), rnn_seq_fn,
                  defaults={"nonlinearity": 0, "reverse": 0}, doc="torch.rnn_*_cell step by step, W_ih = I, b_ih = 0"),
    "lstm_seq": Op(seq_cases(4, 2, 2, SEQ_MASK2, {}, {"reverse": 1}), lstm_seq_fn, defaults={"reverse": 0},
                   doc="torch.lstm_cell step by step, W_ih = I, b_ih = 0; output [h's, c's]"),
    "gru_seq": Op(seq_cases(3, 1, 2, SEQ_MASK2, {}, {"reverse": 1}), gru_seq_fn, defaults={"reverse": 0},
                  doc="torch.gru_cell step by step, W_ih = I, b_ih = 0"),
}

# ------------------------------------------------------------------ driver


def seed_of(name):
    # from the name, not the table position: adding an op must not change any other op's file
    return zlib.crc32(name.encode())


def generate(names, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    header = "# Generated by tools/make_goldens.py (torch %s); do not edit, regenerate.\n" % torch.__version__
    for name in names:
        text, n_cases, worst = OPS[name].render(name, seed_of(name))
        path = os.path.join(out_dir, name + ".txt")
        with open(path, "w") as f:
            f.write(header + text)
        # informational: a float32 formula with cancellation (torch's elu uses exp(x) - 1, not expm1) can
        # exceed the tolerance where a careful one does not, so this flags, it does not fail
        flag = "" if worst <= 1.0 else "   (torch's own float32 exceeds tol)"
        print("%-28s %2d cases %6d bytes  torch-f32 worst %.3f of tol%s"
              % (name, n_cases, len(header) + len(text), worst, flag))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ops", nargs="*", help="only these ops (default: all)")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff with tests/golden")
    ap.add_argument("--out", default=GOLDEN_DIR, help="output folder (default tests/golden)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # one thread: reduction order, and so the float32 self-check, never varies
    names = args.ops or list(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        sys.exit("make_goldens: no entry for %s" % ", ".join(unknown))
    if not args.check:
        rc = generate(names, args.out)
        if not args.ops:
            # the optimiser and schedule goldens (torch.optim) live in their own module beside this one
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import golden_optim
            import golden_rnn
            import golden_block
            import golden_big
            golden_optim.main(args.out)
            golden_rnn.main(args.out)
            golden_block.main(args.out)
            golden_big.generate(os.path.join(args.out, "big"))  # the goldens at real sizes (its own --check)
        return rc
    with tempfile.TemporaryDirectory() as tmp:
        generate(names, tmp)
        return compare_fixtures(names, tmp, args.out)


def compare_fixtures(names, new_dir, old_dir):
    """--check: diff <name>.txt regenerated in new_dir against the committed one in old_dir; exit status 1 if any
    differs or is missing (tools/golden_big.py uses this too)."""
    differ = 0
    for name in names:
        new_path, old_path = os.path.join(new_dir, name + ".txt"), os.path.join(old_dir, name + ".txt")
        if not os.path.exists(old_path):
            print("check: %s is missing" % old_path)
            differ += 1
            continue
        with open(new_path) as f:
            new = f.readlines()
        with open(old_path) as f:
            old = f.readlines()
        if new != old:
            differ += 1
            sys.stdout.writelines(list(difflib.unified_diff(old, new, old_path, "regenerated", n=1))[:40])
    print("check: %d of %d fixtures differ" % (differ, len(names)))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
