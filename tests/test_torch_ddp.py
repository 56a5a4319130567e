"""Data-parallel training over two processes (DistributedDataParallel, gloo, 127.0.0.1) gives the
weights of one process training on the whole batch."""

from __future__ import annotations

import datetime
import os
import socket
import time

import pytest

torch = pytest.importorskip("torch", reason="the DDP test needs PyTorch (torch==2.13.0)")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import eigengru  # noqa: E402
import eigengru.torch as egt  # noqa: E402

STEPS, BATCH, T, I, H = 4, 8, 7, 3, 6


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = egt.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True,
                           dtype=torch.float64)
        self.head = torch.nn.Linear(2 * H, 1, dtype=torch.float64)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, BATCH, T, I, generator=g, dtype=torch.float64)
    return x, x.sum(dim=(2, 3)).unsqueeze(-1)


def train(model, xs, ys):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for x, y in zip(xs, ys):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def worker(rank, world, port, initial, out_path):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only, whatever the hostname resolves to
    torch.set_num_threads(1)
    eigengru.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    model = Model()
    model.load_state_dict(initial)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    xs, ys = data()
    shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)  # disjoint halves
    train(ddp, xs[:, shard], ys[:, shard])
    if rank == 0:
        torch.save(model.state_dict(), out_path)
    # Both ranks are done (and rank 0 has saved) once past this barrier. Then leave at once:
    # gloo's teardown, by destroy_process_group() or by the interpreter's exit, now and then
    # hung (one rank waiting on the other's exit) or aborted ("terminate called without an
    # active exception", about one run in 25 here), failing a test whose work was complete.
    dist.barrier()
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_equals_one_process_on_the_whole_batch(tmp_path):
    torch.manual_seed(0)
    single = Model()
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    out_path = tmp_path / "ddp.pt"
    context = mp.spawn(worker, args=(2, free_port(), initial, str(out_path)), nprocs=2,
                       join=False)
    deadline = time.monotonic() + 180  # a hung worker fails the test instead of hanging it
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the DDP workers did not finish within 180 s")
    xs, ys = data()
    train(single, xs, ys)
    ddp_state = torch.load(out_path)
    changed = False
    for name, expected in single.state_dict().items():
        torch.testing.assert_close(ddp_state[name], expected, rtol=1e-9, atol=1e-12)
        changed |= not torch.equal(expected, initial[name])
    assert changed  # the weights did move
