"""Reduced-precision inference: eigengru's bfloat16 and int8 models (GRU.quantize) against
PyTorch's own (nn.GRU.to(torch.bfloat16) and torch.ao's dynamically quantized int8 GRU) and
eigengru's float32, on the standard shapes; their max |error| against a float64 run of the same
weights; the C++ Stream step at batch 1 in each precision; and each target's status.

    python benchmarks/reduced_precision.py [--threads 1,2] [--repeats 9] [--write]

--write puts the section into BENCHMARKS.md (between its markers; benchmarks/run.py keeps it)
and the numbers into BENCHMARKS.json ("reduced_precision").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import eigengru
from eigengru import bench

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as suite  # beside this script: the build and the machine's description

ROOT = suite.ROOT
BEGIN, END = "<!-- reduced precision: begin -->", "<!-- reduced precision: end -->"
LIBRARIES = ("eigengru float32", "eigengru bfloat16", "eigengru int8", "torch bfloat16",
             "torch int8")
#: The C++ Stream step at batch 1, at most, ns: (I, H) -> precision -> target.
STEP_TARGETS = {(16, 64): {"int8": 150, "bfloat16": 250}, (64, 128): {"int8": 600,
                                                                       "bfloat16": 1000}}


def runners(dims, threads: int):
    """Each library's inference call on the same PyTorch-initialised weights and N(0, 1)
    inputs, and its output for the error measure."""
    import torch

    torch.set_num_threads(threads)
    T, B, I, H = dims
    torch.manual_seed(0)
    module = torch.nn.GRU(I, H)
    x = torch.randn(T, B, I)
    gru = eigengru.interop.from_torch(module)
    x_np = x.numpy()
    q = {p: gru.quantize(p) for p in ("bfloat16", "int8")}
    module_bf16 = torch.nn.GRU(I, H).to(torch.bfloat16)
    module_bf16.load_state_dict(module.state_dict())
    x_bf16 = x.to(torch.bfloat16)
    with warnings.catch_warnings():  # torch.ao's deprecation notice
        warnings.simplefilter("ignore")
        # quantize_dynamic swaps a container's children: the GRU goes in one
        module_int8 = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(module), {torch.nn.GRU}, dtype=torch.qint8)[0]

    def under_inference(call):
        def run():
            with torch.inference_mode():
                return call()
        return run

    calls = {
        "eigengru float32": lambda: gru(x_np)[0],
        "eigengru bfloat16": lambda: q["bfloat16"](x_np)[0],
        "eigengru int8": lambda: q["int8"](x_np)[0],
        "torch bfloat16": under_inference(lambda: module_bf16(x_bf16)[0].float().numpy()),
        "torch int8": under_inference(lambda: module_int8(x)[0].numpy()),  # noqa: PLW0108
    }
    exact = torch.nn.GRU(I, H).double()
    exact.load_state_dict(module.state_dict())
    with torch.no_grad():
        want = exact(x.double())[0].numpy()
    return calls, want


def time_shape(name: str, dims, threads: int, repeats: int, with_errors: bool) -> dict:
    """Every library interleaved repeat by repeat after a warm-up, each timed call right after
    an untimed one of the same library (as benchmarks/run.py times its cells); medians."""
    eigengru.set_num_threads(threads)
    calls, want = runners(dims, threads)
    errors = {lib: float(np.abs(call() - want).max()) for lib, call in calls.items()} \
        if with_errors else {}
    samples = {lib: [] for lib in calls}
    done = 0
    while done < repeats or (done < bench.MAX_REPEATS and
                             sum(map(sum, samples.values())) < bench.MIN_SECONDS):
        done += 1
        for lib, call in calls.items():
            call()
            start = time.perf_counter()
            call()
            samples[lib].append(time.perf_counter() - start)
    return {"shape": name, "dims": list(dims), "threads": threads,
            "ms": {lib: 1e3 * statistics.median(s) for lib, s in samples.items()},
            "errors": errors}


def stream_steps(program: Path) -> list[dict]:
    return [json.loads(subprocess.run([str(program), str(i), str(h), "20000", p], check=True,
                                      capture_output=True, text=True).stdout)
            for i, h in STEP_TARGETS for p in ("float", "bfloat16", "int8")]


def peak_rates(build: Path) -> dict:
    """The multiply-add rates of the instructions the quantized kernels use (the dot products of
    AVX-512, or the avx2 set's int8 sequence and float multiply-adds), where they use them."""
    program = suite.program("dot_product_peak")
    if all(eigengru._core.quantized_kernel(p) == "portable" for p in ("int8", "bfloat16")):
        return {}
    subprocess.run(["cmake", "--build", str(build), "--target", program.name], check=True,
                   stdout=subprocess.DEVNULL)
    rates = json.loads(subprocess.run([str(program)], check=True, capture_output=True,
                                      text=True).stdout)
    if eigengru._core.quantized_kernel("bfloat16") == "avx2-fma":
        rates["bfloat16"] = rates["float"]  # one float multiply-add per bfloat16 product
    return rates


def multiply_adds(dims) -> float:
    T, B, I, H = dims
    return T * B * 3 * H * (I + H)


def status(ok: bool, reachable: bool = True) -> str:
    """met; not met; or out of reach, where a bound measured in the same run is already past
    the target (the note beside the figure names it)."""
    return "met" if ok else "**not met**" if reachable else "**out of reach**"


def markdown(result: dict) -> str:
    cells, steps, peaks = result["cells"], result["steps"], result["peaks"]
    info = result["machine"]
    lines = [BEGIN, "## Reduced precision: bfloat16 and int8 inference", "",
             f"Written by `python benchmarks/reduced_precision.py` on {info['date']}: "
             f"{info['cpu']}, {info['cores']} cores. Inference on the same PyTorch-initialised "
             "weights and N(0, 1) inputs: eigengru's float32 GRU and its models quantized with "
             "`GRU.quantize`, against `torch.nn.GRU.to(torch.bfloat16)` and torch.ao's "
             "dynamically quantized int8 GRU (`quantize_dynamic`, fbgemm). Medians, ms; "
             "libraries interleaved as in the main table. Errors: max |difference| from a "
             "float64 run of the same weights (1 thread; the results do not depend on the thread "
             "count).", "",
             "| shape (T,B,I,H) | threads | eigengru f32 | eigengru bf16 | eigengru int8 | "
             "torch bf16 | torch int8 | bf16 vs torch bf16 | int8 vs torch int8 | bf16 vs f32 | "
             "int8 vs f32 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        ms = c["ms"]
        lines.append(
            f"| {c['shape']} {tuple(c['dims'])} | {c['threads']} | "
            + " | ".join(f"{ms[lib]:.2f}" for lib in LIBRARIES) + " | "
            f"{ms['torch bfloat16'] / ms['eigengru bfloat16']:.2f}x | "
            f"{ms['torch int8'] / ms['eigengru int8']:.2f}x | "
            f"{ms['eigengru float32'] / ms['eigengru bfloat16']:.2f}x | "
            f"{ms['eigengru float32'] / ms['eigengru int8']:.2f}x |")
    lines += ["", "| shape | eigengru bf16 error | eigengru int8 error | torch bf16 error | "
              "torch int8 error | eigengru f32 error |", "|---|---|---|---|---|---|"]
    for c in cells:
        if c["errors"]:
            e = c["errors"]
            lines.append(f"| {c['shape']} | {e['eigengru bfloat16']:.1e} | "
                         f"{e['eigengru int8']:.1e} | {e['torch bfloat16']:.1e} | "
                         f"{e['torch int8']:.1e} | {e['eigengru float32']:.1e} |")
    lines += ["", "C++ `Stream::step` at batch 1 (`benchmarks/stream_latency.cpp`, one thread), "
              "ns per step; \"read\" is the time to read the step's weights alone, in that "
              "precision, from the cache that holds them (the widest vector loads, nothing "
              "else): no step at batch 1 can take less. On this shared host a step's time and "
              "the read's move together from run to run, as other work takes the cache: compare "
              "a step with the read of its own run. Each is the median of 15 rounds' means.", "",
              "| I, H | float32 | bfloat16 | int8 | read f32 / bf16 / int8 | weights f32 / bf16 / "
              "int8 |", "|---|---|---|---|---|---|"]
    for i, h in STEP_TARGETS:
        row = {s["precision"]: s for s in steps if (s["input_size"], s["hidden_size"]) == (i, h)}
        lines.append(f"| {i}, {h} | " + " | ".join(
            f"{row[p]['step_mean_ns']:.0f}" for p in ("float", "bfloat16", "int8")) + " | " +
            " / ".join(f"{row[p]['weights_read_ns']:.0f}" for p in ("float", "bfloat16", "int8"))
            + " | " + " / ".join(f"{row[p]['weight_bytes'] / 1024:.0f} KB"
                                 for p in ("float", "bfloat16", "int8")) + " |")
    if peaks:
        lines += ["", "Peak multiply-add rates of one core (`benchmarks/dot_product_peak.cpp`, "
                  "registers only): " + ", ".join(
                      f"{k} {v:.0f} per ns" for k, v in peaks.items() if v is not None) + "."]
    lines += ["", "### Targets", "", "| target | cell | measured | status |", "|---|---|---|---|"]
    for c in cells:
        ms = c["ms"]
        for precision in ("bfloat16", "int8"):
            ratio = ms[f"torch {precision}"] / ms[f"eigengru {precision}"]
            note, ceiling = "", None
            rate = peaks.get(precision)
            if ratio < 1.5 and rate:
                ceiling = ms[f"torch {precision}"] / (multiply_adds(c["dims"]) / rate /
                                                      c["threads"] / 1e6)
                note = (f" (the {precision} dot product's peak rate allows at most "
                        f"{ceiling:.2f}x: the multiply-adds alone take "
                        f"{multiply_adds(c['dims']) / rate / c['threads'] / 1e6:.1f} ms)")
            reachable = ceiling is None or ceiling >= 1.5
            lines.append(f"| {precision} >= 1.5x torch {precision} | {c['shape']}, "
                         f"{c['threads']}t | {ratio:.2f}x{note} | "
                         f"{status(ratio >= 1.5, reachable)} |")
        if c["shape"] == "large":
            for precision, target in (("int8", 2.5), ("bfloat16", 1.6)):
                ratio = ms["eigengru float32"] / ms[f"eigengru {precision}"]
                rate, note, reachable = peaks.get(precision), "", True
                if ratio < target and rate:
                    alone = multiply_adds(c["dims"]) / rate / c["threads"] / 1e6
                    note = (f" (the {precision} peak rate allows at most "
                            f"{ms['eigengru float32'] / alone:.2f}x: the multiply-adds alone "
                            f"take {alone:.1f} ms)")
                    reachable = ms["eigengru float32"] / alone >= target
                lines.append(f"| {precision} >= {target}x eigengru float32 | large, "
                             f"{c['threads']}t | {ratio:.2f}x{note} | "
                             f"{status(ratio >= target, reachable)} |")
    for c in cells:
        if c["errors"]:
            e = c["errors"]
            lines.append(f"| bf16 error <= 5e-3 | {c['shape']} | {e['eigengru bfloat16']:.1e} | "
                         f"{status(e['eigengru bfloat16'] <= 5e-3)} |")
            lines.append(f"| int8 error <= torch int8's | {c['shape']} | "
                         f"{e['eigengru int8']:.1e} vs {e['torch int8']:.1e} | "
                         f"{status(e['eigengru int8'] <= e['torch int8'])} |")
    for (i, h), targets in STEP_TARGETS.items():
        for precision, target in targets.items():
            row = next(s for s in steps if s["precision"] == precision and
                       (s["input_size"], s["hidden_size"]) == (i, h))
            got, read = row["step_mean_ns"], row["weights_read_ns"]
            note, least = "", read
            if got > target:
                note = f" (reading the weights alone takes {read:.0f} ns"
                if peaks.get(precision):
                    alone = 3 * h * (i + h) / peaks[precision]
                    note += f"; its {3 * h * (i + h)} multiply-adds alone, {alone:.0f} ns"
                    least = max(read, alone)
                note += ")"
            lines.append(f"| Stream step <= {target} ns | {precision}, ({i}, {h}) | "
                         f"{got:.0f} ns{note} | {status(got <= target, least <= target)} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--shape", action="append", choices=list(bench.SHAPES), default=None)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--section", action="store_true",
                        help="write the run as a section of its own, headed by the machine and "
                             "the kernel set in use (for a machine of another kind than the "
                             "main section's), and keep the main section")
    args = parser.parse_args()
    build = suite.build_programs()
    threads = sorted({int(t) for t in args.threads.split(",")})
    cells = []
    for n in threads:
        for name in args.shape or bench.SHAPES:
            cell = time_shape(name, bench.SHAPES[name], n, args.repeats, with_errors=n == 1)
            cells.append(cell)
            print(name, n, {k: round(v, 3) for k, v in cell["ms"].items()},
                  {k: f"{v:.1e}" for k, v in cell["errors"].items()}, flush=True)
    steps = stream_steps(suite.program("stream_latency"))
    result = {"machine": suite.machine(), "cells": cells, "steps": steps,
              "peaks": peak_rates(build)}
    print(markdown(result))
    if args.section:
        suite.write_machine_section("reduced precision", result["machine"], markdown(result),
                                    result)
    elif args.write:
        suite.write_section(BEGIN, END, markdown(result), "reduced_precision", result)


if __name__ == "__main__":
    main()
