#!/usr/bin/python3
"""Makes the ONNX import fixtures (docs/onnx.md): small PyTorch models written by torch.onnx.export, with inputs
and PyTorch's outputs, so that the importer's test (tests/test_onnx.c) needs no PyTorch.  Debian's python3-torch.

    /usr/bin/python3 tools/onnx_fixtures.py [OUT_DIR]      (default tests/fixtures/onnx)

For each model NAME it writes NAME.onnx (opset 13, gru_bi opset 14; a dynamic batch axis, and a dynamic length T
for the sequence models) and NAME.txt:
    input D0 D1 ...      the dims, then the values, whitespace-separated, then
    output D0 D1 ...     the same for PyTorch's output (evaluation mode)
The models are small (a few ten thousand parameters) so that the fixtures stay small.
"""
import os
import sys

import torch
import torch.nn as nn


def mlp():
    # Linear layers on [N, 784] export as Gemm (transB=1)
    return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10)), (1, 784)


def lenet():
    # Conv, ReLU, MaxPool, Flatten, Gemm: LeNet-5's convolutions with a smaller dense head
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 32), nn.ReLU(), nn.Linear(32, 10)), (1, 1, 28, 28)


class ResBlockNet(nn.Module):
    """A stem, a ResNet basic block (conv-bn-relu-conv-bn + the block's input, relu), two branches joined along
    channels (Inception-style) and batch-normalised, global average pooling and a dense head: Conv, Relu, Add,
    Concat, BatchNormalization, GlobalAveragePool, Flatten, Gemm (the exporter folds the block's batch norms into
    their convolutions)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.c1, self.b1 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.down = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.branch_a = nn.Conv2d(6, 3, 1)
        self.branch_b = nn.Conv2d(6, 3, 3, padding=1)
        self.b3 = nn.BatchNorm2d(6)  # after the join: no convolution to fold it into, so it stays a node
        self.head = nn.Linear(6, 10)
        for bn in (self.b1, self.b2, self.b3):  # statistics away from the initial 0 and 1, as after training
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(y)) + x)
        x = torch.relu(self.down(x))
        x = self.b3(torch.cat([torch.relu(self.branch_a(x)), torch.relu(self.branch_b(x))], 1))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.head(torch.flatten(x, 1))


def resnet():
    return ResBlockNet(), (1, 1, 28, 28)


class RowsLSTM(nn.Module):
    """An LSTM classifier reading MNIST rows (examples/mnist_rows_lstm.cfg, smaller): batch-first, two stacked
    layers, the last step's output, a Linear head.  torch.onnx.export: Transpose, two LSTM nodes joined by a
    Squeeze, Squeeze, Transpose, Gather(axis 1, -1), Gemm; the initial states are zeros made from the input's
    shape (Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Slice)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1, :])


class BiGRU(nn.Module):
    """A stacked bidirectional GRU, batch-first, with a Linear at every step: GRU nodes joined by Transpose and
    Reshape, then MatMul and Add (a Linear on a 3-d input)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


class TimeMajorRNN(nn.Module):
    """A vanilla RNN (tanh), time-major (batch_first=False: the input is [T, N, F]), the last step, a Linear head.
    dendrite's model takes [N, T, F]: the fixture's input is written batch-first."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(5, 7)
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


class CharLSTM(nn.Module):
    """A character model (examples/char_lstm.cfg, smaller): Embedding (Gather of int64 ids), an LSTM, a Linear at
    every step."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.rnn = nn.LSTM(8, 12, batch_first=True)
        self.head = nn.Linear(12, 30)

    def forward(self, x):
        return self.head(self.rnn(self.emb(x))[0])


class GRUFinalState(nn.Module):
    """A GRU classifier from its final state h_n[-1] (torch: Gather(axis 0, -1) of the node's Y_h)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[1][-1])


class StackedLSTMFinalState(nn.Module):
    """A 2-layer LSTM classifier from h_n[-1]: torch joins the layers' Y_h by a Concat(axis 0), then Gather(-1)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 6, num_layers=2, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[1][0][-1])


class BiGRULast(nn.Module):
    """A bidirectional GRU read at its last step, y[:, -1]: the reverse direction's output there is its first step,
    not its final state (which dendrite's return_sequences = 0 gives), so the importer must refuse it
    (refused/bigru_last.onnx; no outputs kept)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 4, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


def write_tensor(f, tag, t):
    f.write("%s %s\n" % (tag, " ".join(str(d) for d in t.shape)))
    f.write(" ".join("%.9g" % v for v in t.reshape(-1).tolist()) + "\n")


# Sequence models: (name, model, input shape for the export, dynamic axes of the input and output, the input for
# the fixture, opset); the batch and the length T are left free.
def sequence_models():
    bt = {0: "N", 1: "T"}
    return (
        ("lstm_rows", RowsLSTM(), (1, 28, 28), bt, {0: "N"}, lambda: torch.rand(3, 28, 28), 13),
        ("gru_bi", BiGRU(), (1, 7, 5), bt, bt, lambda: torch.rand(3, 7, 5) * 2 - 1, 14),
        ("rnn_tanh", TimeMajorRNN(), (6, 1, 5), {0: "T", 1: "N"}, {0: "N"}, lambda: torch.rand(6, 3, 5) * 2 - 1, 13),
        ("char_lstm", CharLSTM(), (1, 9), bt, bt, lambda: torch.randint(0, 30, (3, 9)), 13),
    )


def write_sequence_fixture(out, name, model, shape, dyn_in, dyn_out, make_x, opset):
    model.eval()
    path = os.path.join(out, name + ".onnx")
    dtype = torch.long if name == "char_lstm" else torch.float
    torch.onnx.export(model, torch.zeros(shape, dtype=dtype), path, opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": dyn_in, "output": dyn_out})
    x = make_x()
    with torch.no_grad():
        y = model(x)
    if name == "rnn_tanh":
        x = x.transpose(0, 1)  # dendrite's (and the re-exported graph's) input is batch-first [N, T, F]
    with open(os.path.join(out, name + ".txt"), "w") as f:
        write_tensor(f, "input", x)
        write_tensor(f, "output", y)
    print(path, sum(p.numel() for p in model.parameters()), "parameters")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    for name, make in (("mlp", mlp), ("lenet", lenet), ("resnet", resnet)):
        torch.manual_seed(1)
        model, shape = make()
        model.eval()
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(model, torch.zeros(shape), path, opset_version=13, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
        x = torch.rand((3,) + shape[1:])
        with torch.no_grad():
            y = model(x)
        with open(os.path.join(out, name + ".txt"), "w") as f:
            write_tensor(f, "input", x)
            write_tensor(f, "output", y)
        print(path, sum(p.numel() for p in model.parameters()), "parameters")
    torch.manual_seed(2)
    for args in sequence_models():
        write_sequence_fixture(out, *args)
    # added later, with its own seed so that the fixtures above stay as they were
    torch.manual_seed(3)
    write_sequence_fixture(out, "gru_hn", GRUFinalState(), (1, 8, 5), {0: "N", 1: "T"}, {0: "N"},
                           lambda: torch.rand(3, 8, 5) * 2 - 1, 13)
    torch.manual_seed(4)
    write_sequence_fixture(out, "lstm_hn2", StackedLSTMFinalState(), (1, 8, 5), {0: "N", 1: "T"}, {0: "N"},
                           lambda: torch.rand(3, 8, 5) * 2 - 1, 13)
    os.makedirs(os.path.join(out, "refused"), exist_ok=True)
    path = os.path.join(out, "refused", "bigru_last.onnx")
    torch.onnx.export(BiGRULast().eval(), torch.zeros(1, 6, 5), path, opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "N", 1: "T"}, "output": {0: "N"}})
    print(path)


if __name__ == "__main__":
    main()
