#!/usr/bin/env python3
"""A whole residual/Inception-style block against PyTorch: tests/golden/block_resnet.txt.

The cfg below is built by dendrite and, layer by layer, by torch.nn modules with the same parameters (named as
dendrite names them).  The fixture holds the cfg, every parameter, an input, an upstream gradient, and what torch
computes in training mode: the output, the gradients of the input and of every parameter, and the batch-norm
running statistics after the forward pass.  Format, one block per tensor:

    cfg <number of lines>        followed by the cfg text
    tensor <name> <ndim> <dims...>
    <values, %.9g>

    /usr/bin/python3 tools/golden_block.py [OUT_DIR]
"""
import os
import sys

import torch
import torch.nn.functional as F

CFG = """[net]
input = 3, 6, 6
[convolutional]
filters = 4
size = 3
pad = 1
activation = relu
[convolutional]
filters = 4
size = 3
pad = 1
bias = 0
[batchnorm]
[activation]
type = relu
[convolutional]
filters = 4
size = 3
pad = 1
bias = 0
[batchnorm]
[shortcut]
from = 0
activation = relu
[route]
layers = 6, 0
[maxpool]
size = 2
[global_avgpool]
[dense]
units = 3
"""


def main(out_dir=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")):
    torch.manual_seed(7)
    dt = torch.float64
    p = {}

    def param(name, *shape, scale=0.4):
        p[name] = (torch.randn(*shape, dtype=torch.float32) * scale).to(dt).requires_grad_(True)
        return p[name]

    param("layers.0.weight", 4, 3, 3, 3)
    param("layers.0.bias", 4)
    param("layers.1.weight", 4, 4, 3, 3)
    p["layers.2.weight"] = (1 + 0.2 * torch.randn(4, dtype=torch.float32)).to(dt).requires_grad_(True)
    param("layers.2.bias", 4, scale=0.2)
    param("layers.4.weight", 4, 4, 3, 3)
    p["layers.5.weight"] = (1 + 0.2 * torch.randn(4, dtype=torch.float32)).to(dt).requires_grad_(True)
    param("layers.5.bias", 4, scale=0.2)
    param("layers.10.weight", 3, 8)
    param("layers.10.bias", 3)
    buffers = {name: torch.zeros(4, dtype=dt) if "mean" in name else torch.ones(4, dtype=dt)
               for name in ["layers.2.running_mean", "layers.2.running_var", "layers.5.running_mean",
                            "layers.5.running_var"]}
    x = torch.randn(2, 3, 6, 6, dtype=torch.float32).to(dt).requires_grad_(True)
    gy = torch.randn(2, 3, dtype=torch.float32).to(dt)

    h0 = F.relu(F.conv2d(x, p["layers.0.weight"], p["layers.0.bias"], padding=1))
    h1 = F.conv2d(h0, p["layers.1.weight"], None, padding=1)
    h2 = F.batch_norm(h1, buffers["layers.2.running_mean"], buffers["layers.2.running_var"], p["layers.2.weight"],
                      p["layers.2.bias"], training=True, momentum=0.1, eps=1e-5)
    h3 = F.relu(h2)
    h4 = F.conv2d(h3, p["layers.4.weight"], None, padding=1)
    h5 = F.batch_norm(h4, buffers["layers.5.running_mean"], buffers["layers.5.running_var"], p["layers.5.weight"],
                      p["layers.5.bias"], training=True, momentum=0.1, eps=1e-5)
    h6 = F.relu(h5 + h0)
    h7 = torch.cat([h6, h0], dim=1)
    h8 = F.max_pool2d(h7, 2)
    h9 = F.adaptive_avg_pool2d(h8, 1)
    y = F.linear(h9.flatten(1), p["layers.10.weight"], p["layers.10.bias"])
    (y * gy).sum().backward()

    def block(name, t):
        t = t.detach().to(torch.float32).contiguous()
        dims = " ".join(str(d) for d in t.shape)
        vals = " ".join("%.9g" % v for v in t.flatten().tolist())
        return "tensor %s %d %s\n%s\n" % (name, t.dim(), dims, vals)

    out = ["# made by tools/golden_block.py: a residual + route block, dendrite vs torch in training mode\n",
           "cfg %d\n%s" % (CFG.count("\n"), CFG)]
    for name, t in p.items():
        out.append(block("param:" + name, t))
    out.append(block("input", x))
    out.append(block("grad_output", gy))
    out.append(block("output", y))
    out.append(block("grad:input", x.grad))
    for name, t in p.items():
        out.append(block("grad:" + name, t.grad))
    for name, t in buffers.items():
        out.append(block("buffer:" + name, t))
    path = os.path.join(out_dir, "block_resnet.txt")
    with open(path, "w") as f:
        f.write("".join(out))
    print("block_resnet: %d bytes" % os.path.getsize(path))


if __name__ == "__main__":
    main(*sys.argv[1:2])
