#!/usr/bin/python3
"""Golden files for dendrite's optimisers and learning-rate schedules, made with PyTorch 1.13's torch.optim.

Run with Debian's torch:   /usr/bin/python3 tools/golden_optim.py [outdir]     (default: tests/golden)
or from another script:    import golden_optim; golden_optim.main(outdir)

Optimiser files, tests/golden/optim_<name>.txt (one item per line, '#' starts a comment line):

    key=value            settings, with dendrite's dn_optim_config names (kind=sgd|adam|adamw|rmsprop|adagrad;
                         booleans 0/1); n=<parameters>, steps=<count>
    mask v1 .. vn        (only where weight decay is on) decay_mask: 0 excludes the element from weight decay
    init v1 .. vn        parameters before the first step
    grad v1 .. vn        the gradient of step k (k = 1 .. steps, in order) ...
    param v1 .. vn       ... and the parameters after step k

Schedule files, tests/golden/sched_<name>.txt:

    key=value            dn_schedule field names (kind=constant|step|exponential|cosine|plateau), epochs=<count>
    lr v0 .. v(E-1)      the learning rate in use during epoch e (read before scheduler.step())
    metric m0 .. m(E-1)  (plateau only) the metric passed to scheduler.step() at the end of epoch e

Every number is written with 9 significant digits, so float32 values survive the round trip exactly.  Every
setting is rounded to float32 *before* torch sees it, because dendrite keeps its settings in float32: torch then
computes its double-precision scalars (1 - beta1, lr / (1 - beta1^t), ...) from the same values as the C code.
torch runs its single-tensor implementation (foreach=False), the one whose arithmetic order dendrite follows.
"""
import os
import sys
import warnings

import torch

STEPS = 20
N = 12
EPOCHS = 30


def f32(x):
    """x rounded to the nearest float32, as a Python float."""
    return float(torch.tensor(x, dtype=torch.float32).item())


def fmt(x):
    return "%.9g" % x


def fmt_vec(v):
    return " ".join(fmt(float(x)) for x in v)


# name, torch class, settings (dendrite names), uses a decay mask
OPTIMISERS = [
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd_nesterov", "sgd", dict(lr=0.05, momentum=0.9, nesterov=1)),
    ("sgd_dampening_wd", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_amsgrad", "adam", dict(lr=0.01, beta1=0.8, beta2=0.99, amsgrad=1)),
    ("adam_wd", "adam", dict(lr=0.01, weight_decay=0.05)),
    ("adamw", "adamw", dict(lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad", "adamw", dict(lr=0.02, weight_decay=0.05, amsgrad=1, eps=1e-6)),
    ("rmsprop", "rmsprop", dict(lr=0.01)),
    ("rmsprop_centered_momentum", "rmsprop", dict(lr=0.01, alpha=0.9, centered=1, momentum=0.9)),
    ("rmsprop_wd", "rmsprop", dict(lr=0.01, weight_decay=0.05)),
    ("adagrad", "adagrad", dict(lr=0.1)),
    ("adagrad_decay", "adagrad",
     dict(lr=0.1, lr_decay=0.05, initial_accumulator=0.1, weight_decay=0.02, eps=1e-6)),
]

# dendrite's defaults (dn_optim_defaults), written out in full in every file
DEFAULTS = {
    "sgd": dict(lr=0.01, momentum=0, dampening=0, nesterov=0, weight_decay=0),
    "adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0, amsgrad=0),
    "adamw": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=0),
    "rmsprop": dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=0),
    "adagrad": dict(lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator=0, eps=1e-10),
}


def make_torch_optim(kind, groups, s):
    """The torch optimiser for dendrite settings s; groups: param groups (their own weight_decay)."""
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=s["lr"], momentum=s["momentum"], dampening=s["dampening"],
                               nesterov=bool(s["nesterov"]), foreach=False)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(groups, lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"],
                   amsgrad=bool(s["amsgrad"]), foreach=False)
    if kind == "rmsprop":
        return torch.optim.RMSprop(groups, lr=s["lr"], alpha=s["alpha"], eps=s["eps"], momentum=s["momentum"],
                                   centered=bool(s["centered"]), foreach=False)
    if kind == "adagrad":
        return torch.optim.Adagrad(groups, lr=s["lr"], lr_decay=s["lr_decay"],
                                   initial_accumulator_value=s["initial_accumulator"], eps=s["eps"],
                                   foreach=False)
    raise ValueError(kind)


def optim_golden(path, name, kind, overrides, seed):
    s = dict(DEFAULTS[kind])
    s.update(overrides)
    s = {k: f32(v) for k, v in s.items()}

    gen = torch.Generator().manual_seed(seed)
    init = torch.randn(N, generator=gen, dtype=torch.float32)
    # Gradients shrink over the run, so the second moment falls and amsgrad's running maximum matters.
    grads = [torch.randn(N, generator=gen, dtype=torch.float32) * f32(2.0 * 0.85 ** k) for k in range(STEPS)]

    # decay_mask as torch sees it: the masked elements sit in a second param group with weight_decay 0.
    use_mask = s["weight_decay"] != 0
    mask = torch.ones(N, dtype=torch.bool)
    if use_mask:
        mask[torch.tensor([1, 4, 5, 10])] = False
    p_decay = init[mask].clone().requires_grad_(True)
    p_plain = init[~mask].clone().requires_grad_(True)
    groups = [{"params": [p_decay], "weight_decay": s["weight_decay"]}]
    if p_plain.numel():
        groups.append({"params": [p_plain], "weight_decay": 0.0})
    opt = make_torch_optim(kind, groups, s)

    lines = ["# %s: torch.optim.%s (torch %s, foreach=False), %d steps on %d parameters"
             % (name, type(opt).__name__, torch.__version__, STEPS, N)]
    lines.append("kind=" + kind)
    for k, v in s.items():
        lines.append("%s=%s" % (k, fmt(v)))
    lines.append("n=%d" % N)
    lines.append("steps=%d" % STEPS)
    if use_mask:
        lines.append("mask " + " ".join("1" if m else "0" for m in mask.tolist()))
    lines.append("init " + fmt_vec(init))
    params = init.clone()
    for g in grads:
        p_decay.grad = g[mask].clone()
        p_plain.grad = g[~mask].clone()
        opt.step()
        with torch.no_grad():
            params[mask] = p_decay
            params[~mask] = p_plain
        lines.append("grad " + fmt_vec(g))
        lines.append("param " + fmt_vec(params))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def sched_golden(path, name, s, metrics=None):
    """Runs the torch scheduler equivalent to dendrite schedule s (a dict of dn_schedule fields)."""
    s = {k: (f32(v) if isinstance(v, float) else v) for k, v in s.items()}
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=s["base_lr"])
    kind = s["kind"]
    S = torch.optim.lr_scheduler

    def proper():
        if kind == "constant":
            return S.LambdaLR(opt, lambda e: 1.0)
        if kind == "step":
            return S.StepLR(opt, step_size=s["step_size"], gamma=s["gamma"])
        if kind == "exponential":
            return S.ExponentialLR(opt, gamma=s["gamma"])
        if kind == "cosine":
            return S.CosineAnnealingLR(opt, T_max=s["t_max"], eta_min=s["eta_min"])
        if kind == "plateau":
            return S.ReduceLROnPlateau(opt, mode="min", factor=s["factor"], patience=s["patience"],
                                       threshold=s["threshold"], threshold_mode="rel", cooldown=s["cooldown"],
                                       min_lr=s["min_lr"])
        raise ValueError(kind)

    w = s.get("warmup_epochs", 0)
    if w > 0:
        # Warm-up, then the schedule proper counted from the end of the warm-up (its epoch 0 is epoch w).
        assert kind != "plateau", "torch's SequentialLR cannot hold ReduceLROnPlateau"
        warm = S.LinearLR(opt, start_factor=s["warmup_start_factor"], end_factor=1.0, total_iters=w)
        sched = S.SequentialLR(opt, [warm, proper()], milestones=[w])
    else:
        sched = proper()

    lrs = []
    for e in range(EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        if kind == "plateau":
            sched.step(metrics[e])
        else:
            sched.step()

    lines = ["# %s: the torch %s learning rate in use during each of %d epochs (torch %s)"
             % (name, type(sched).__name__, EPOCHS, torch.__version__)]
    for k, v in s.items():
        lines.append("%s=%s" % (k, v if isinstance(v, str) else fmt(v)))
    lines.append("epochs=%d" % EPOCHS)
    lines.append("lr " + " ".join(fmt(x) for x in lrs))
    if metrics is not None:
        lines.append("metric " + " ".join(fmt(x) for x in metrics))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plateau_metrics():
    """A loss curve that falls, stalls (twice long enough to trigger a reduction), wobbles inside the
    threshold and falls again: float32 values, so best-so-far comparisons agree exactly with the C code."""
    m, v = [], 1.0
    for e in range(EPOCHS):
        if e < 5:
            v *= 0.8
        elif e < 12:
            v = v * (1 + 1e-5 * (-1) ** e)   # inside the relative threshold: not an improvement
        elif e < 15:
            v *= 0.9
        else:
            v = v * (1.0 + 0.01 * ((e % 3) - 1))
        m.append(f32(v))
    return m


SCHEDULES = [
    ("constant", dict(kind="constant", base_lr=0.1)),
    ("step", dict(kind="step", base_lr=0.1, step_size=7, gamma=0.5)),
    ("exponential", dict(kind="exponential", base_lr=0.1, gamma=0.9)),
    ("cosine", dict(kind="cosine", base_lr=0.1, t_max=12, eta_min=0.001)),
    ("warmup_cosine", dict(kind="cosine", base_lr=0.1, t_max=20, eta_min=0.0, warmup_epochs=5,
                           warmup_start_factor=1.0 / 3.0)),
    ("warmup_step", dict(kind="step", base_lr=0.05, step_size=4, gamma=0.7, warmup_epochs=3,
                         warmup_start_factor=0.1)),
    ("plateau", dict(kind="plateau", base_lr=0.1, factor=0.5, patience=2, threshold=1e-4, cooldown=1,
                     min_lr=0.01)),
]


def main(outdir="tests/golden"):
    os.makedirs(outdir, exist_ok=True)
    # torch warns that the schedulers step before any optimiser step, and about SequentialLR's step(0): both
    # are expected here (no training happens), and the values are what a real loop sees.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.optim.lr_scheduler")
    for i, (name, kind, overrides) in enumerate(OPTIMISERS):
        optim_golden(os.path.join(outdir, "optim_%s.txt" % name), name, kind, overrides, seed=1000 + i)
    for name, s in SCHEDULES:
        metrics = plateau_metrics() if s["kind"] == "plateau" else None
        sched_golden(os.path.join(outdir, "sched_%s.txt" % name), name, s, metrics)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "golden"))
