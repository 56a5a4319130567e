"""Train a GRU with eigengru's NumPy API on the adding problem and watch the loss fall.

Each input step is a pair (value, marker): values are uniform in [0, 1), and exactly two steps,
one in each half of the sequence, are marked. The target is the sum of the two marked values, so
the network must remember them across the sequence. Predicting the mean (1.0) scores an MSE of
1/6 ~ 0.167; a model that solves the task scores far below that. (`eigengru train` is the same
loop with a progress bar, a plot and a saved model.)

    python examples/train_adding_problem.py [--steps 800] [--seq-len 50] [--hidden 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eigengru
from eigengru.linear import Linear
from eigengru.optim import Adam, clip_grad_norm
from eigengru.tasks import AddingProblem


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = AddingProblem(args.seq_len, seed=args.seed)
    gru = eigengru.GRU(task.input_size, args.hidden, seed=args.seed)
    head = Linear(args.hidden, 1, seed=args.seed + 1)
    params = {f"gru.{k}": p for k, p in gru.parameters()}
    params |= {f"head.{k}": p for k, p in head.parameters()}
    optimizer = Adam(params, lr=args.lr)
    print(f"adding problem, T={args.seq_len}, {gru}, {eigengru.get_num_threads()} threads; "
          f"predicting the mean scores MSE 0.167")

    start, recent = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        batch = task.batch(args.batch)
        _, h_n = gru.forward(batch.x, train=True)                # (1, B, H)
        error = head(h_n[0])[:, 0] - batch.target
        recent.append(float(np.mean(error**2)))
        gru.zero_grad()
        head.zero_grad()
        grad_h = head.backward((2 * error / args.batch)[:, None])  # dL/dh_n
        gru.backward(None, grad_h[None])
        grads = {f"gru.{k}": g for k, g in gru.grads.items()}
        grads |= {f"head.{k}": g for k, g in head.grads.items()}
        clip_grad_norm(grads, 1.0)
        optimizer.step(grads)
        if step % 25 == 0 or step == 1:
            print(f"step {step:4d}  mse {np.mean(recent):.4f}  "
                  f"({step / (time.perf_counter() - start):.0f} steps/s)")
            recent = []
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
