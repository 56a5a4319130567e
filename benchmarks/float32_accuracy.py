"""Float32 accuracy: eigengru's and PyTorch's float32 GRUs against a float64 run of the same
weights (PyTorch-initialised) and N(0, 1) inputs, on the standard shapes, a few draws each:
the forward's max |error| (output and final state), and at the large shape the training
gradients' too.

    python benchmarks/float32_accuracy.py [--draws 3] [--write]

--write puts the section into BENCHMARKS.md (between its markers; benchmarks/run.py keeps it)
and the numbers into BENCHMARKS.json ("float32_accuracy").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import eigengru
from eigengru import bench, interop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as suite  # beside this script: the machine's description and the section writer

BEGIN, END = "<!-- float32 accuracy: begin -->", "<!-- float32 accuracy: end -->"


def gradient_errors(dims, draw: int) -> dict:
    """Per gradient (dx and each parameter's): eigengru's and torch's max |error|."""
    T, B, I, H = dims
    torch.manual_seed(draw)
    module = torch.nn.GRU(I, H)
    x, grad_out = torch.randn(T, B, I), torch.randn(T, B, H)

    def ours(dtype):
        gru = interop.from_torch(module, dtype=dtype)
        gru.forward(x.numpy().astype(dtype), train=True)
        dx, _ = gru.backward(grad_out.numpy().astype(dtype))
        return {"dx": dx, **{name: g.copy() for name, g in gru.grads.items()}}

    exact, mine = ours(np.float64), ours(np.float32)
    x_grad = x.clone().requires_grad_(True)
    module(x_grad)[0].backward(grad_out)
    theirs = {"dx": x_grad.grad.numpy(),
              **{name: p.grad.numpy() for name, p in module.named_parameters()}}
    return {name: {"eigengru": float(np.abs(mine[name] - exact[name]).max()),
                   "torch": float(np.abs(theirs[name] - exact[name]).max())} for name in exact}


def markdown(result: dict) -> str:
    draws = result["draws"]
    lines = [BEGIN, "## Float32 accuracy", "",
             f"Max \\|error\\| of each float32 GRU against a float64 run of the same weights "
             f"(PyTorch-initialised) and N(0, 1) inputs, {draws} draws per shape (torch seeds "
             f"0-{draws - 1}), eigengru {result['isa']} kernels, 1 thread. Forward: output and "
             f"final state. Long dot products are summed in blocks of 64 terms, which is what "
             f"brings the large shape below torch; at the shallower shapes both sum the same few "
             f"terms per output and either may come out ahead (docs/design.md: what being ahead "
             f"there would cost). \"at most torch's\" counts the draws where eigengru's error is "
             f"no larger than torch's.", "",
             "| shape (T,B,I,H) | eigengru | torch | eigengru / torch | at most torch's |",
             "|---|---|---|---|---|"]
    for row in result["forward"]:
        ours, theirs = row["eigengru"], row["torch"]
        ratios = [a / b for a, b in zip(ours, theirs)]
        lines.append(f"| {row['shape']} {tuple(row['dims'])} | "
                     f"{min(ours):.2e}-{max(ours):.2e} | {min(theirs):.2e}-{max(theirs):.2e} | "
                     f"{min(ratios):.2f}-{max(ratios):.2f} | "
                     f"{sum(a <= b for a, b in zip(ours, theirs))} of {len(ours)} |")
    lines += ["", "Training gradients at the large shape (draw 0, a N(0, 1) output gradient):", "",
              "| gradient | eigengru | torch | eigengru / torch |", "|---|---|---|---|"]
    for name, row in result["gradients"].items():
        lines.append(f"| {name} | {row['eigengru']:.2e} | {row['torch']:.2e} | "
                     f"{row['eigengru'] / row['torch']:.2f} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    eigengru.set_num_threads(1)
    forward = []
    for name, dims in bench.SHAPES.items():
        runs = [bench.float32_forward_errors(dims, draw) for draw in range(args.draws)]
        forward.append({"shape": name, "dims": list(dims),
                        "eigengru": [ours for ours, _ in runs],
                        "torch": [theirs for _, theirs in runs]})
        print(name, forward[-1], flush=True)
    result = {"machine": suite.machine(), "isa": eigengru.build_info()["isa"],
              "draws": args.draws, "forward": forward,
              "gradients": gradient_errors(bench.SHAPES["large"], 0)}
    print(markdown(result))
    if args.write:
        suite.write_section(BEGIN, END, markdown(result), "float32_accuracy", result)


if __name__ == "__main__":
    main()
