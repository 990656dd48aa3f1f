#!/usr/bin/python3
"""PyTorch's side of `make bench`: the same cases as bench/bench.c, printed in the same format.

    bench_torch.py [--data DIR] [--text FILE] CASE THREADS

CASE: mlp lenet cnn infer-mlp infer-lenet lstm gru, or info (how this torch is built and which BLAS it runs
on).  Same models, data (the MNIST training images scaled to [0, 1], in file order), batch 64, loss (softmax
cross-entropy), optimiser (SGD lr 0.01 momentum 0.9), warm-up and batch counts as bench.c.  lstm and gru are
bench.c's character language models on --text (data/fortunes.txt): the same vocabulary, windows, batches,
model, loss and Adam settings.  The thread count
is set with torch.set_num_threads; run.sh also sets OMP_NUM_THREADS and points LD_LIBRARY_PATH at Debian's
OpenBLAS (with the reference BLAS that libblas.so.3 may otherwise be, torch is ~15x slower).
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def proc_kib(field):
    """A field of /proc/self/status in KiB (VmHWM: peak resident, VmRSS: now); -1 without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def load_mnist(data_dir):
    with open(os.path.join(data_dir, "train-images-idx3-ubyte"), "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    # bytes, as dendrite's dn_dataset_load_idx_compact and torchvision's MNIST keep them; a batch becomes float32 in
    # [0, 1] when it is used (as_float)
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 1, 28, 28).copy()
    with open(os.path.join(data_dir, "train-labels-idx1-ubyte"), "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def as_float(xb):
    return xb.float().div_(255)


def build_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def build_lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def build_cnn():
    """pytorch/examples mnist/main.py's Net (log_softmax + nll_loss there is cross_entropy here)."""
    return nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10))


def train_case(name, build, warmup, batches, data_dir, threads):
    x, y = load_mnist(data_dir)
    data_kib = proc_kib("VmRSS")
    torch.manual_seed(1)
    model = build()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n, bs = x.shape[0], 64
    if batches <= 0:
        batches = (n + bs - 1) // bs
    samples, loss_sum, t0, c0 = 0, 0.0, 0.0, 0.0
    for b in range(warmup + batches):
        if b == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        at = b * bs % n
        xb, yb = as_float(x[at:at + bs]), y[at:at + bs]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if b >= warmup:
            samples += xb.shape[0]
            loss_sum += loss.item()
    t, tc = time.perf_counter() - t0, time.process_time() - c0
    print(f"result {name} torch {threads} {samples / t:.1f} samples/s")
    print(f"cpuresult {name} torch {threads} {samples / tc:.1f} samples/s")
    print(f"memory {name} torch {threads} {proc_kib('VmHWM')} {data_kib}")
    print(f"info {name} torch mean loss {loss_sum / batches:.4f} over {samples} samples")


def load_text(path, seq_len):
    """dn_dataset_load_text's windows: ids into the file's distinct bytes in byte order; window k is bytes
    [k T, k T + T) and its targets are the bytes one further on.  Returns x, y [windows, T] and the vocab size."""
    raw = np.fromfile(path, dtype=np.uint8)
    vocab = np.unique(raw)  # sorted: byte order, as dn_vocab_build
    index = np.full(256, -1, dtype=np.int64)
    index[vocab] = np.arange(len(vocab))
    ids = torch.from_numpy(index[raw])
    windows = (len(ids) - 1) // seq_len
    x = ids[:windows * seq_len].view(windows, seq_len)
    y = ids[1:windows * seq_len + 1].view(windows, seq_len)
    return x, y, len(vocab)


class CharModel(nn.Module):
    """bench.c's build_char_model: Embedding(V, 64) -> one LSTM/GRU layer of 256 -> Linear(256, V) per step."""

    def __init__(self, kind, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, 64)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(64, 256, batch_first=True)
        self.out = nn.Linear(256, vocab)

    def forward(self, ids):
        h, _ = self.rnn(self.emb(ids))  # no initial state: zeros in every batch
        return self.out(h)


def char_case(kind, warmup, steps, text_path, threads):
    if not os.path.isfile(text_path):
        print(f"bench_torch.py: {kind} skipped: no {text_path}; fetch it with scripts/fetch-fortunes.sh or pass "
              "--text FILE", file=sys.stderr)
        return
    bs, seq = 32, 64
    x, y, vocab = load_text(text_path, seq)
    full = x.shape[0] // bs  # whole batches only: every step is B x T
    if full < 1:
        print(f"bench_torch.py: {kind} skipped: {text_path} has fewer than {bs} windows of {seq} bytes",
              file=sys.stderr)
        return
    data_kib = proc_kib("VmRSS")
    torch.manual_seed(1)
    model = CharModel(kind, vocab)
    model.train()
    print(f"info {kind} torch vocab {vocab}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{x.shape[0]} windows")
    opt = torch.optim.Adam(model.parameters(), lr=0.002)
    tokens, loss_sum, t0, c0 = 0, 0.0, 0.0, 0.0
    for s in range(warmup + steps):
        if s == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        at = s % full * bs
        xb, yb = x[at:at + bs], y[at:at + bs]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb).reshape(-1, vocab), yb.reshape(-1))  # mean over all B*T positions
        loss.backward()
        opt.step()
        if s >= warmup:
            tokens += bs * seq
            loss_sum += loss.item()
    t, tc = time.perf_counter() - t0, time.process_time() - c0
    print(f"result {kind} torch {threads} {tokens / t:.1f} tokens/s")
    print(f"cpuresult {kind} torch {threads} {tokens / tc:.1f} tokens/s")
    print(f"memory {kind} torch {threads} {proc_kib('VmHWM')} {data_kib}")
    print(f"info {kind} torch mean loss {loss_sum / steps:.4f} over {steps} steps")


def infer_case(name, build, data_dir, threads):
    x, _ = load_mnist(data_dir)
    torch.manual_seed(1)
    model = build()
    model.eval()
    us, checksum = [], 0.0
    with torch.inference_mode():
        for i in range(100 + 1000):
            k = i % x.shape[0]
            t0 = time.perf_counter()
            v = model(as_float(x[k:k + 1]))[0, 0].item()
            if i >= 100:
                us.append((time.perf_counter() - t0) * 1e6)
            checksum += v
    print(f"result {name} torch {threads} {float(np.median(us)):.2f} us")
    print(f"info {name} torch checksum {checksum:g}")


def info(threads):
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()
                       or "gomp" in line.lower()})
    cfg = torch.__config__.show()
    keys = ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP", "TORCH_VERSION")
    settings = [tok.strip().rstrip(",") for tok in cfg.replace(",", " ").split() if tok.startswith(keys)]
    blas = [ln.strip() for ln in cfg.splitlines() if "MKL-DNN" in ln or "CPU capability" in ln] + [" ".join(settings)]
    print(f"info torch version {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"info torch mkldnn (oneDNN) available={torch.backends.mkldnn.is_available()} "
          f"enabled={torch.backends.mkldnn.enabled}")
    for ln in blas:
        print(f"info torch config: {ln[:300]}")
    for lib in libs:
        print(f"info torch maps {lib}")
    try:  # OpenBLAS says which kernels it picked for this CPU
        import ctypes
        for lib in libs:
            if "openblas" in lib:
                ob = ctypes.CDLL(lib)
                ob.openblas_get_corename.restype = ctypes.c_char_p
                print(f"info torch openblas core {ob.openblas_get_corename().decode()}")
                break
    except (OSError, AttributeError):
        pass


def main(argv):
    data_dir, text_path = "data/mnist", "data/fortunes.txt"
    while len(argv) > 2 and argv[1] in ("--data", "--text"):
        if argv[1] == "--data":
            data_dir = argv[2]
        else:
            text_path = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) != 3:
        print("usage: bench_torch.py [--data DIR] [--text FILE] CASE THREADS", file=sys.stderr)
        return 2
    case, threads = argv[1], max(1, int(argv[2]))
    torch.set_num_threads(threads)
    if case == "info":
        info(threads)
    elif case == "mlp":
        train_case("mlp", build_mlp, 5, 0, data_dir, threads)
    elif case == "lenet":
        train_case("lenet", build_lenet, 10, 200, data_dir, threads)
    elif case == "cnn":
        train_case("cnn", build_cnn, 3, 50, data_dir, threads)
    elif case == "infer-mlp":
        infer_case("infer-mlp", build_mlp, data_dir, threads)
    elif case == "infer-lenet":
        infer_case("infer-lenet", build_lenet, data_dir, threads)
    elif case in ("lstm", "gru"):  # RNN CASES: 3 warm-up steps, then 60, as bench.c
        char_case(case, 3, 60, text_path, threads)
    else:
        print(f"bench_torch.py: unknown case '{case}'", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
