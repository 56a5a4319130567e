"""Swap torch.nn.GRU for eigengru.torch.GRU in a real PyTorch training loop.

The same model (a 2-layer GRU and a linear head, identical initial weights) is trained with each
GRU on variable-length sequences, fed both as a padded batch and as a PackedSequence; the script
prints each one's loss and time per epoch. The only change between the two runs is the class.

    python examples/torch_drop_in.py [--epochs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence

import eigengru
import eigengru.torch

T, BATCH, INPUT, HIDDEN, BATCHES = 60, 32, 8, 64, 20


class Regressor(torch.nn.Module):
    def __init__(self, gru_class):
        super().__init__()
        self.gru = gru_class(INPUT, HIDDEN, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x, lengths, packed):
        if packed:
            _, h_n = self.gru(pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False))
        else:
            _, h_n = self.gru(x)  # padded: the padding is part of the sequence
        return self.head(h_n[-1])


def batches(seed):
    """Sequences of random length whose target is the mean of their first feature."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        lengths = torch.randint(T // 4, T + 1, (BATCH,), generator=g)
        x = torch.randn(BATCH, T, INPUT, generator=g)
        mask = torch.arange(T)[None, :] < lengths[:, None]
        x = x * mask[..., None]
        y = x[..., 0].sum(1, keepdim=True) / lengths[:, None]
        yield x, lengths, y


def train(model, epochs, packed):
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        for x, lengths, y in batches(epoch):
            loss = torch.nn.functional.mse_loss(model(x, lengths, packed), y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item()
        yield epoch, total / BATCHES, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    eigengru.set_num_threads(args.threads)

    torch.manual_seed(0)
    initial = Regressor(torch.nn.GRU).state_dict()
    for packed in (False, True):
        print(f"\n{'PackedSequence' if packed else 'padded batch'}, {args.threads} threads, "
              f"{BATCHES} batches of {BATCH} sequences of up to {T} steps per epoch")
        runs = {}
        for name, cls in (("torch.nn.GRU", torch.nn.GRU),
                          ("eigengru.torch.GRU", eigengru.torch.GRU)):
            model = Regressor(cls)
            model.load_state_dict(initial)
            runs[name] = list(train(model, args.epochs, packed))
        for epoch in range(args.epochs):
            (_, lt, tt) = runs["torch.nn.GRU"][epoch]
            (_, le, te) = runs["eigengru.torch.GRU"][epoch]
            print(f"epoch {epoch}: torch.nn.GRU loss {lt:.5f} in {tt:.2f} s | "
                  f"eigengru.torch.GRU loss {le:.5f} in {te:.2f} s ({tt / te:.1f}x faster)")


if __name__ == "__main__":
    main()
