"""Data-parallel training with eigengru.torch.GRU: DistributedDataParallel over 2 processes on
this machine (gloo, 127.0.0.1), the plain way a PyTorch script does it, with one line more:
the DDP wrapper is freed before the process group is destroyed (see the comment there).

Each process trains on its half of every batch; DDP averages the gradients, so both end with
the weights that one process training on whole batches would have. Rank 0 saves them.

    python examples/torch_ddp.py [--steps 4] [--out ddp.pt]
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import eigengru
import eigengru.torch

STEPS, BATCH, T, INPUT, HIDDEN = 4, 8, 7, 3, 6


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = eigengru.torch.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True,
                                      batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(2 * HIDDEN, 1, dtype=torch.float64)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def batches(steps):
    """The same batches in every process: sequences whose target is the sum of their inputs."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps, BATCH, T, INPUT, generator=g, dtype=torch.float64)
    return x, x.sum(dim=(2, 3)).unsqueeze(-1)


def train(model, xs, ys):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for x, y in zip(xs, ys):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def worker(rank, world, port, steps, out):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only, whatever the hostname resolves to
    torch.set_num_threads(1)
    eigengru.set_num_threads(1)  # one core per process
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(0)  # every rank starts from the same weights
    model = Model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    xs, ys = batches(steps)
    shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    train(ddp, xs[:, shard], ys[:, shard])
    if rank == 0:
        torch.save(model.state_dict(), out)
    # Free DDP's reducer while the process group is still registered: if the reducer drops the
    # group's last reference, torch destroys it holding the GIL and can deadlock with a gloo
    # thread that still needs the GIL (torch's own race; nn.GRU and nn.Linear models hit it too).
    del ddp
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--out", default="ddp.pt")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(2, port, args.steps, args.out), nprocs=2)
    print(f"2 processes trained {args.steps} steps; rank 0 saved the weights to {args.out}")


if __name__ == "__main__":
    main()
