"""The ``eigengru`` command: ``train``, ``bench`` and ``info``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, build_info
from .gru import GRU
from .linear import Linear
from .optim import Adam, clip_grad_norm
from .quantized import PRECISIONS
from .tasks import TASKS
from .threads import get_num_threads, set_num_threads


class CommandError(Exception):
    """A problem with the command line, reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise CommandError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eigengru", description="A fast CPU GRU: train, benchmark, inspect.")
    parser.add_argument("--version", action="version", version=f"eigengru {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train a GRU on a built-in long-range memory task",
        description="Train a GRU (NumPy API, Adam, gradient clipping, a linear read-out) on a "
                    "synthetic task that needs long-range memory, generated from --seed. "
                    "Saves the model, a loss-curve PNG and a JSON of the run in --out.")
    train.add_argument("--task", choices=sorted(TASKS), default="adding",
                       help="adding: sum of the two marked values (trivial MSE 0.167); copy: "
                            "recall 5 symbols after a delay (trivial cross-entropy ln 8 = 2.08). "
                            "Default: adding")
    train.add_argument("--seq-len", type=_positive(int), default=100,
                       help="steps per sequence (100)")
    train.add_argument("--hidden", type=_positive(int), default=64, help="hidden size (64)")
    train.add_argument("--layers", type=_positive(int), default=1, help="stacked layers (1)")
    train.add_argument("--batch", type=_positive(int), default=64, help="sequences per step (64)")
    train.add_argument("--steps", type=_positive(int), default=2500, help="optimiser steps (2500)")
    train.add_argument("--lr", type=_positive(float), default=3e-3,
                       help="Adam learning rate (3e-3)")
    train.add_argument("--clip", type=_positive(float), default=1.0,
                       help="gradient-norm clip (1.0)")
    train.add_argument("--threads", type=_positive(int), default=None,
                       help="threads (default: OMP_NUM_THREADS or all cores)")
    train.add_argument("--seed", type=int, default=0, help="seed for data and weights (0)")
    train.add_argument("--out", type=Path, default=Path("eigengru-run"),
                       help="folder for model.npz, loss.png and run.json (eigengru-run)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    bench = commands.add_parser(
        "bench", help="time eigengru against torch.nn.GRU",
        description="Time inference and training (forward+backward) against torch.nn.GRU "
                    "(when PyTorch is installed), at 1 thread and all threads, in one run.")
    bench.add_argument("--shape", action="append", default=[], metavar="T,B,I,H",
                       help="a shape to time (repeatable); default: the small and medium shapes")
    bench.add_argument("--threads", default=None, help="comma-separated thread counts "
                       "(default: 1 and all cores)")
    bench.add_argument("--repeats", type=_positive(int), default=5,
                       help="timed repeats at least (5); short cells repeat until 1 s is timed")

    commands.add_parser("info", help="version, build and threads",
                        description="Version, compiler and flags, SIMD instruction sets, OpenMP "
                                    "threads, Eigen version, and whether PyTorch interop works.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return {"train": run_train, "bench": run_bench, "info": run_info}[args.command](args)
    except CommandError as error:
        print(error, file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as error:
        print(f"eigengru: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("eigengru: interrupted", file=sys.stderr)
        return 130


# -- train -------------------------------------------------------------------------------------
def run_train(args) -> int:
    if args.threads:
        set_num_threads(args.threads)
    task = TASKS[args.task](args.seq_len, seed=args.seed)
    gru = GRU(task.input_size, args.hidden, num_layers=args.layers, seed=args.seed)
    head = Linear(args.hidden, task.outputs, seed=args.seed + 1)
    params = {f"gru.{k}": v for k, v in gru.parameters()}
    params |= {f"head.{k}": v for k, v in head.parameters()}
    optimizer = Adam(params, lr=args.lr)
    args.out.mkdir(parents=True, exist_ok=True)

    print(f"eigengru train: {task.name} task, T={args.seq_len}, {gru}, batch {args.batch}, "
          f"{args.steps} steps, {get_num_threads()} threads; trivial {task.loss_name} "
          f"{task.baseline:.3f}")
    progress = _progress(args.steps, disabled=args.no_progress)
    losses, start = [], time.perf_counter()
    for _ in range(args.steps):
        batch = task.batch(args.batch)
        loss = _train_step(task, gru, head, batch)
        grads = {f"gru.{k}": g for k, g in gru.grads.items()}
        grads |= {f"head.{k}": g for k, g in head.grads.items()}
        clip_grad_norm(grads, args.clip)
        optimizer.step(grads)
        gru.zero_grad()
        head.zero_grad()
        losses.append(loss)
        progress.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)
        progress.update()
    progress.close()
    wall = time.perf_counter() - start

    fresh = task.batch(1000)
    final = _evaluate(task, gru, head, fresh)
    # The same sequences through the model with its weights quantized (inference only).
    quantized = {p: _evaluate(task, gru.quantize(p), head, fresh) for p in PRECISIONS}
    gru.save(args.out / "model.npz")
    np.savez(args.out / "head.npz", weight=head.weight, bias=head.bias)
    plotted = _plot(losses, task, args.out / "loss.png")
    sequences = args.steps * args.batch
    run = {"task": task.name, "seq_len": args.seq_len, "config": gru.config(),
           "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
           "threads": get_num_threads(), "loss_name": task.loss_name,
           "trivial_loss": task.baseline, "final_loss": final, "quantized_loss": quantized,
           "wall_seconds": wall,
           "steps_per_second": args.steps / wall, "sequences_per_second": sequences / wall,
           "losses": losses, "eigengru": __version__}
    (args.out / "run.json").write_text(json.dumps(run, indent=1) + "\n")

    verdict = "solved" if final < 0.1 * task.baseline else (
        "learning" if final < 0.7 * task.baseline else "not solved")
    print(f"\n  final {task.loss_name} {final:.4f} on 1000 fresh sequences, trivial "
          f"{task.baseline:.4f} ({task.baseline / max(final, 1e-12):.0f}x lower): {verdict}")
    print("  quantized: " + ", ".join(
        f"{p} {task.loss_name} {loss:.3g} ({loss / max(final, 1e-12):.2f}x float32's)"
        for p, loss in quantized.items()))
    print(f"  {wall:.1f} s, {args.steps / wall:.0f} steps/s, {sequences / wall:,.0f} sequences/s, "
          f"{sequences * args.seq_len / wall:,.0f} time steps/s")
    print(f"  saved {args.out / 'model.npz'}, {args.out / 'head.npz'}, {args.out / 'run.json'}" +
          (f", {args.out / 'loss.png'}" if plotted else " (no loss.png: matplotlib is not "
                                                        "installed; pip install matplotlib)"))
    return 0


def _train_step(task, gru, head, batch) -> float:
    out, h_n = gru.forward(batch.x, train=True)
    loss, grad = task.loss(head(task.readout(out, h_n)), batch.target)
    gru.backward(*task.readout_gradients(out, h_n, head.backward(grad)))
    return loss


def _evaluate(task, gru, head, batch) -> float:
    out, h_n = gru(batch.x)
    return task.loss(head(task.readout(out, h_n)), batch.target)[0]


def _progress(total, disabled):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        disabled = True
    if disabled:
        class Silent:
            def set_postfix(self, *a, **k): ...
            def update(self, *a): ...
            def close(self): ...
        return Silent()
    return tqdm(total=total, unit="step", dynamic_ncols=True, smoothing=0.1)


def _plot(losses, task, path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 100)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(steps, losses, color="0.8", linewidth=0.6, label="per step")
    ax.plot(steps[window - 1:], smooth, color="C0", label=f"mean of {window}")
    ax.axhline(task.baseline, color="C3", linestyle="--", label=f"trivial ({task.baseline:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(task.loss_name)
    ax.set_title(f"eigengru: {task.name} task, T = {task.seq_len}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# -- bench -------------------------------------------------------------------------------------
def run_bench(args) -> int:
    from . import bench

    shapes = {}
    for text in args.shape:
        try:
            shapes[text] = bench.parse_shape(text)
        except ValueError as error:
            raise CommandError(f"eigengru bench: --shape: {error}") from None
    shapes = shapes or {k: bench.SHAPES[k] for k in ("small", "medium")}
    try:
        threads = sorted({int(t) for t in (args.threads or f"1,{os.cpu_count()}").split(",")})
    except ValueError:
        raise CommandError(f"eigengru bench: --threads: expected integers like 1,2, got "
                           f"{args.threads!r}") from None
    if min(threads) < 1:
        raise CommandError("eigengru bench: --threads: counts must be at least 1")
    peers = [p for p in bench.available_peers() if p == "torch"]
    against = "against torch.nn.GRU" if peers else "PyTorch not installed: eigengru alone"
    print(f"eigengru bench: {against}"
          f", float32, median of at least {args.repeats} repeats")
    cells = []
    for n in threads:
        for name, dims in shapes.items():
            for mode in bench.MODES:
                cells.append(bench.time_cell(name, dims, mode, n, peers, args.repeats))
    print(bench.format_table(cells))
    return 0


# -- info --------------------------------------------------------------------------------------
def run_info(args) -> int:
    info = build_info()
    try:
        import torch

        interop = f"yes (torch {torch.__version__})"
    except ImportError:
        interop = "no (pip install torch==2.13.0)"
    rows = [("eigengru", info["version"]), ("compiler", info["compiler"]),
            ("flags", info["flags"]),
            ("kernel set", f"{info['isa']} (compiled: {', '.join(info['isas'])}; "
                           "EIGENGRU_ISA chooses)"),
            ("SIMD", info["simd"]), ("Eigen", info["eigen"]),
            ("OpenMP", f"{info['openmp']}, {get_num_threads()} threads"),
            ("PyTorch interop", interop), ("Python", sys.version.split()[0]),
            ("NumPy", np.__version__)]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
