"""Step loops: one time step per call from Python, as reinforcement-learning agents, samplers
and real-time code run a GRU. 1 thread, float32, batch 1, against torch.nn.GRUCell and
torch.nn.GRU in the same run, the libraries interleaved repeat by repeat.

    python benchmarks/step_loops.py [--repeats 7]      # prints the table

benchmarks/run.py runs it too and writes the table into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import eigengru
import eigengru.torch

SIZES = [(16, 64), (256, 256)]
TRAIN_STEPS = 100  # steps forward, then backward through all of them


def _per_call_us(run, calls: int) -> float:
    start = time.perf_counter()
    run(calls)
    return (time.perf_counter() - start) / calls * 1e6


def _inference_loops(input_size: int, hidden_size: int) -> dict:
    """name -> run(calls): a loop of one-step calls carrying the state, as a sampler runs."""
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(input_size, hidden_size)
    ours_cell = eigengru.torch.GRUCell(input_size, hidden_size)
    ours_cell.load_state_dict(cell.state_dict())
    gru = torch.nn.GRU(input_size, hidden_size)
    ours_gru = eigengru.torch.GRU(input_size, hidden_size)
    ours_gru.load_state_dict(gru.state_dict())
    numpy_gru = eigengru.GRU(input_size, hidden_size)
    numpy_gru.load_state_dict(gru.state_dict())
    numpy_cell = eigengru.GRUCell(input_size, hidden_size)
    numpy_cell.load_state_dict(cell.state_dict())
    stream = numpy_gru.stream()
    x, x_seq = torch.randn(1, input_size), torch.randn(1, 1, input_size)
    x_np, x_seq_np = x.numpy(), x_seq.numpy()
    out = np.empty((1, hidden_size), np.float32)

    def cell_loop(module):
        def run(calls):
            h = torch.zeros(1, hidden_size)
            with torch.no_grad():
                for _ in range(calls):
                    h = module(x, h)
        return run

    def gru_loop(module):
        def run(calls):
            h = torch.zeros(1, 1, hidden_size)
            with torch.no_grad():
                for _ in range(calls):
                    _, h = module(x_seq, h)
        return run

    def numpy_cell_loop(calls):
        h = np.zeros((1, hidden_size), np.float32)
        for _ in range(calls):
            h = numpy_cell(x_np, h)

    def numpy_gru_loop(calls):
        h = np.zeros((1, 1, hidden_size), np.float32)
        for _ in range(calls):
            _, h = numpy_gru(x_seq_np, h)

    def stream_loop(calls):
        for _ in range(calls):
            stream.step(x_np, out=out)

    return {"nn.GRUCell": cell_loop(cell), "eigengru.torch.GRUCell": cell_loop(ours_cell),
            "eigengru Stream.step": stream_loop, "eigengru.GRUCell (NumPy)": numpy_cell_loop,
            "nn.GRU, 1 step": gru_loop(gru),
            "eigengru.torch.GRU, 1 step": gru_loop(ours_gru),
            "eigengru.GRU (NumPy), 1 step": numpy_gru_loop}


def _training_loops(input_size: int, hidden_size: int) -> dict:
    """name -> run(calls): TRAIN_STEPS steps forward, then one backward through them all."""
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(input_size, hidden_size)
    ours = eigengru.torch.GRUCell(input_size, hidden_size)
    ours.load_state_dict(cell.state_dict())
    xs = torch.randn(TRAIN_STEPS, 1, input_size)

    def loop(module):
        def run(calls):
            for _ in range(max(1, calls // TRAIN_STEPS)):
                h = torch.zeros(1, hidden_size)
                for t in range(TRAIN_STEPS):
                    h = module(xs[t], h)
                h.square().sum().backward()
        return run

    return {"nn.GRUCell": loop(cell), "eigengru.torch.GRUCell": loop(ours)}


def measure(repeats: int = 7) -> list[dict]:
    torch_threads, eigengru_threads = torch.get_num_threads(), eigengru.get_num_threads()
    torch.set_num_threads(1)
    eigengru.set_num_threads(1)
    rows = []
    try:
        for input_size, hidden_size in SIZES:
            for mode, loops, calls in (("inference", _inference_loops(input_size, hidden_size),
                                        2000 if hidden_size < 256 else 500),
                                       ("training", _training_loops(input_size, hidden_size),
                                        TRAIN_STEPS * (4 if hidden_size < 256 else 2))):
                times = {name: [] for name in loops}
                for run in loops.values():
                    run(calls // 4)  # warm-up
                for _ in range(repeats):
                    for name, run in loops.items():
                        times[name].append(_per_call_us(run, calls))
                rows.append({"size": (input_size, hidden_size), "mode": mode,
                             "us": {k: statistics.median(v) for k, v in times.items()}})
    finally:
        torch.set_num_threads(torch_threads)
        eigengru.set_num_threads(eigengru_threads)
    return rows


def _targets(row: dict) -> list[tuple[str, str, str, bool]]:
    """The step-loop targets this row bears on: (measure, value, target, met)."""
    us, small = row["us"], row["size"] == (16, 64)
    cell = us["nn.GRUCell"]
    if row["mode"] == "training":
        ratio = cell / us["eigengru.torch.GRUCell"]
        return [("eigengru.torch.GRUCell vs nn.GRUCell", f"{ratio:.2f}x", ">= 1.5x",
                 ratio >= 1.5)]
    ours = us["eigengru.torch.GRUCell"]
    stream = us["eigengru Stream.step"]
    checks = [("eigengru.torch.GRUCell vs nn.GRUCell", f"{cell / ours:.2f}x",
               ">= 2x" if small else ">= 1.3x", cell / ours >= (2.0 if small else 1.3)),
              ("Stream.step vs nn.GRUCell", f"{cell / stream:.2f}x",
               ">= 5x" if small else ">= 1.5x", cell / stream >= (5.0 if small else 1.5))]
    if small:
        checks.append(("Stream.step", f"{stream:.2f} us", "<= 2 us", stream <= 2.0))
    for name, cell_name in (("eigengru.torch.GRU, 1 step", "eigengru.torch.GRUCell"),
                            ("eigengru.GRU (NumPy), 1 step", "eigengru.GRUCell (NumPy)")):
        ratio = us[name] / us[cell_name]
        checks.append((f"{name} vs {cell_name}", f"{ratio:.2f}x the time", "<= 1.2x",
                       ratio <= 1.2))
    return checks


def markdown(rows: list[dict]) -> str:
    names = list(dict.fromkeys(n for row in rows for n in row["us"]))
    lines = ["| I, H | mode | " + " | ".join(f"{n} us" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for row in rows:
        cells = [f"{row['us'][n]:.2f}" if n in row["us"] else "-" for n in names]
        lines.append(f"| {row['size'][0]}, {row['size'][1]} | {row['mode']} | "
                     + " | ".join(cells) + " |")
    lines += ["", "| I, H | mode | measure | value | target | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        for what, value, target, met in _targets(row):
            lines.append(f"| {row['size'][0]}, {row['size'][1]} | {row['mode']} | {what} | "
                         f"{value} | {target} | {'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    print(markdown(measure(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
