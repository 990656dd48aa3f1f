#!/usr/bin/env python3
"""The PyTorch twin of examples/char_lstm.cfg, for the README's comparison of validation losses.

Same data preparation as dendrite (a vocabulary of the text's distinct bytes in byte order; non-overlapping
windows of 64 bytes whose targets are the next bytes; 5% of the windows held out at random), same model
(Embedding(128, 64) -> LSTM(64, 256) -> Linear(256, 128)), same training (Adam lr 0.002, gradient norm clipped
to 5, batch 32, one epoch, softmax cross-entropy averaged over every position).  The random streams differ
(initialisation, split, order), so the two runs agree statistically, not bit for bit.

    /usr/bin/python3 tools/char_lstm_torch.py [data/fortunes.txt]
"""
import sys
import time

import torch


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "data/fortunes.txt"
    torch.manual_seed(1)
    torch.set_num_threads(1)
    data = open(path, "rb").read()
    vocab = sorted(set(data))
    index = {b: i for i, b in enumerate(vocab)}
    ids = torch.tensor([index[b] for b in data], dtype=torch.long)
    T, B = 64, 32
    windows = (len(ids) - 1) // T
    x = ids[: windows * T].view(windows, T)
    y = ids[1 : windows * T + 1].view(windows, T)
    perm = torch.randperm(windows)
    n_val = round(0.05 * windows)
    val_idx, train_idx = perm[windows - n_val :].sort().values, perm[: windows - n_val].sort().values

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(128, 64)
            self.lstm = torch.nn.LSTM(64, 256, batch_first=True)
            self.out = torch.nn.Linear(256, 128)

        def forward(self, inp):
            h, _ = self.lstm(self.emb(inp))
            return self.out(h)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.002)
    lossf = torch.nn.CrossEntropyLoss()
    order = train_idx[torch.randperm(len(train_idx))]
    start = time.time()
    net.train()
    for k in range(0, len(order), B):
        batch = order[k : k + B]
        logits = net(x[batch])
        loss = lossf(logits.transpose(1, 2), y[batch])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
    seconds = time.time() - start
    net.eval()
    with torch.no_grad():
        total = 0.0
        for k in range(0, len(val_idx), 256):
            batch = val_idx[k : k + 256]
            total += lossf(net(x[batch]).transpose(1, 2), y[batch]).item() * len(batch)
    print('{"val_loss": %.4f, "train_windows": %d, "val_windows": %d, "seconds": %.1f, "tokens_per_sec": %.0f}'
          % (total / len(val_idx), len(train_idx), len(val_idx), seconds, len(train_idx) * T / seconds))


if __name__ == "__main__":
    main()
