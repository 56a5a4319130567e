"""eigengru's benchmark suite: eigengru against torch.nn.GRU and ONNX Runtime's GRU, on identical
weights and inputs in one run, with the GEMM bound and the training memory beside them, and
against JAX when it is installed (benchmarks/jax_peer.py).

    python benchmarks/run.py                       # standard shapes, 1 thread and all cores
    python benchmarks/run.py --shape 200,8,40,100 --threads 1,2,4 --repeats 7
    python benchmarks/run.py --quick               # two shapes, 3 repeats (a smoke run)

Writes BENCHMARKS.md and BENCHMARKS.json at the repository's root (--no-write to skip),
keeping the kernel-set section that benchmarks/kernel_sets.py --write put there.
Run it in the environment made by ./scripts/test (PyTorch and ONNX Runtime installed).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import eigengru
from eigengru import bench

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"


def program(name: str) -> Path:
    """benchmarks/<name>.cpp as built for the kernel set that eigengru runs on this CPU (the
    same choice, EIGENGRU_ISA included, as the library inside the program makes)."""
    return BUILD / f"{name}_{eigengru.build_info()['isa']}"


def build_programs() -> Path:
    """Builds benchmarks/*.cpp with the project's CMake (Release, same flags) for the kernel
    set that this CPU runs; returns the folder."""
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
                    "-DEIGENGRU_BUILD_BENCHMARKS=ON", f"-DPython_EXECUTABLE={sys.executable}"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(BUILD), "--target",
                    program("gemm_bound").name, program("stream_latency").name],
                   check=True, stdout=subprocess.DEVNULL)
    return BUILD


def gemm_bound(program: Path, dims, threads: int, repeats: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([str(program), *map(str, dims), str(repeats)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def stream_latency(program: Path) -> list[dict]:
    """ns per streaming step at batch 1 (C++, no Python), beside the sequence forward's."""
    return [json.loads(subprocess.run([str(program), str(i), str(h)], check=True,
                                      capture_output=True, text=True).stdout)
            for i, h in ((16, 64), (64, 128))]


def packed_versus_padded(repeats: int) -> list[dict]:
    """Training time of eigengru.torch.GRU and torch.nn.GRU on one batch of variable-length
    sequences, given padded and as a PackedSequence (the medium shape, 1 thread)."""
    import time

    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    import eigengru.torch

    steps, batch, inputs, hidden = bench.SHAPES["medium"]
    torch.set_num_threads(1)
    eigengru.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps, batch, inputs, generator=g)
    lengths = torch.randint(steps // 2, steps + 1, (batch,), generator=g)
    results = []
    for name, cls in (("torch.nn.GRU", torch.nn.GRU), ("eigengru.torch.GRU", eigengru.torch.GRU)):
        module = cls(inputs, hidden)
        for packed in (False, True):
            def run(module=module, packed=packed):
                xr = x.detach().requires_grad_(True)
                source = pack_padded_sequence(xr, lengths, enforce_sorted=False) if packed else xr
                out, _ = module(source)
                (out.data if packed else out).sum().backward()
            run()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            results.append({"library": name, "input": "packed" if packed else "padded",
                            "ms": sorted(times)[len(times) // 2] * 1e3})
    eigengru.set_num_threads(os.cpu_count())
    return results


def memory_probe(library: str, dims) -> dict:
    """Peak extra resident memory of one training forward+backward, in a fresh process.

    The peak is the process's VmHWM, reset once the libraries are loaded (ru_maxrss would not
    do: on Linux it also counts the forked copy of this large parent process before exec)."""
    code = f"""
import json, numpy as np
def status_kb(field):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))
def reset_peak():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
T, B, I, H = {tuple(dims)}
x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
g = np.ones((T, B, H), np.float32)
extra = {{}}
if {library!r} == 'eigengru':
    import eigengru
    gru = eigengru.GRU(I, H, seed=0)
    base = status_kb('VmRSS')
    reset_peak()
    gru.forward(x, train=True)
    extra['cache_bytes'] = gru._pending[0].nbytes
    gru.backward(g)
else:
    import torch
    m = torch.nn.GRU(I, H)
    xt, gt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(g)
    base = status_kb('VmRSS')
    reset_peak()
    out, _ = m(xt)
    out.backward(gt)
print(json.dumps(dict(extra_mb=(status_kb('VmHWM') - base) / 1024, **extra)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def machine() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("model name"))
        flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
        isa = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                           "avx512_bf16", "amx_tile") if f in flags]
    except (OSError, StopIteration):
        isa = []
    versions = {"eigengru": eigengru.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    for name in ("torch", "onnxruntime", "jax"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    build = eigengru.build_info()
    return {"cpu": model, "cores": os.cpu_count(), "isa": isa, "kernel_set": build["isa"],
            "compiler": build["compiler"],
            "eigen": build["eigen"], "simd": build["simd"], "versions": versions,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def parse_dims(text: str) -> tuple[int, int, int, int]:
    try:
        return bench.parse_shape(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=parse_dims, action="append", default=[],
                        help="add a shape T,B,I,H (repeatable)")
    parser.add_argument("--only", action="store_true", help="run only the --shape shapes")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}",
                        help="comma-separated thread counts (default: 1 and all cores)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2,
                        help="time every cell this many times, minutes apart, and keep each "
                             "library's best round (default: 2)")
    parser.add_argument("--quick", action="store_true", help="small and medium, 3 repeats")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--section", action="store_true",
                        help="write the run as a section of BENCHMARKS.md of its own, headed by "
                             "the machine and the kernel set in use (for a machine of another "
                             "kind than the main run's), and keep the main run")
    args = parser.parse_args()

    shapes = {} if args.only else dict(bench.SHAPES)
    if args.quick:
        shapes = {k: bench.SHAPES[k] for k in ("small", "medium")}
        args.repeats = min(args.repeats, 3)
    for dims in args.shape:
        shapes[",".join(map(str, dims))] = dims
    threads = sorted({int(t) for t in args.threads.split(",")})
    peers = bench.available_peers()
    build_programs()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, {', '.join(info['isa'])}; peers: "
          f"{', '.join(peers) or 'none'}", flush=True)

    kept: dict[tuple, bench.Cell] = {}
    bounds: dict[tuple, dict] = {}
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_} of {args.rounds}", flush=True)
        for n in threads:
            for name, dims in shapes.items():
                measured = gemm_bound(program("gemm_bound"), dims, n, args.repeats)
                bounds[(name, n)] = faster_bound(bounds.get((name, n)), measured)
                for mode in bench.MODES:
                    cell = bench.time_cell(name, dims, mode, n, peers, args.repeats,
                                           one_thread=True)
                    print(bench.format_table([cell], *extras(bounds)).splitlines()[-1],
                          flush=True)
                    key = (name, n, mode)
                    kept[key] = cell if key not in kept else best_rounds(kept[key], cell)
    cells = list(kept.values())

    streaming = stream_latency(program("stream_latency"))
    packing = packed_versus_padded(args.repeats) if "torch" in peers else []
    steps = []
    if "torch" in peers:
        import step_loops  # beside this script; it needs torch

        steps = step_loops.measure(args.repeats)
        print("\n" + step_loops.markdown(steps))
    jax_cells = []
    if importlib.util.find_spec("jax") is not None:
        import jax_peer  # beside this script

        jax_cells = jax_peer.measure(threads, args.repeats)
        print("\n" + jax_peer.section(jax_cells))
    memory = {"eigengru": memory_probe("eigengru", bench.SHAPES["large"])}
    if "torch" in peers:
        memory["torch"] = memory_probe("torch", bench.SHAPES["large"])
    table = bench.format_table(cells, *extras(bounds))
    print("\n" + table)
    for row in streaming:
        print(f"streaming step, I={row['input_size']}, H={row['hidden_size']}: "
              f"{row['step_mean_ns']:.0f} ns (median {row['step_median_ns']:.0f}, p99 "
              f"{row['step_p99_ns']:.0f}); sequence forward "
              f"{row['sequence_per_step_ns']:.0f} ns/step")
    for row in packing:
        print(f"{row['library']} training, {row['input']}: {row['ms']:.1f} ms")
    print("\nPeak extra memory, training forward+backward, large shape: " +
          ", ".join(f"{k} {v['extra_mb']:.0f} MB" for k, v in memory.items()))
    if args.no_write:
        return
    results = {"machine": info, "cells": [c.to_dict() for c in cells],
               "gemm_bound": [{"shape": k[0], "threads": k[1], **v} for k, v in bounds.items()],
               "memory": memory, "streaming": streaming, "packed_versus_padded": packing,
               "step_loops": [dict(row, size=list(row["size"])) for row in steps],
               "jax": jax_cells}
    # The kernel-set comparison (benchmarks/kernel_sets.py --write) is a run of its own: kept.
    import kernel_sets

    old_json = ROOT / "BENCHMARKS.json"
    if old_json.exists() and "kernel_sets" in json.loads(old_json.read_text()):
        results["kernel_sets"] = json.loads(old_json.read_text())["kernel_sets"]
    text = markdown(info, table, memory, streaming, packing, targets_table(cells, bounds),
                    bounds, args.repeats, args.rounds) + step_loops_section(steps)
    if jax_cells:
        import jax_peer

        text = text.rstrip("\n") + "\n\n" + jax_peer.section(jax_cells)
    text = text.rstrip("\n") + "\n\n" + limits_section(cells, bounds, jax_cells)
    if args.section:
        write_machine_section("run", info, text, results)
        print(f"\nwrote a section of {ROOT / 'BENCHMARKS.md'} and {ROOT / 'BENCHMARKS.json'}")
        return
    if "kernel_sets" in results:
        text = text.rstrip("\n") + "\n\n" + kernel_sets.section(results["kernel_sets"]) + "\n"
    # So are the reduced-precision and float32-accuracy ones (their scripts' --write).
    import float32_accuracy
    import reduced_precision

    for key, module in (("reduced_precision", reduced_precision),
                        ("float32_accuracy", float32_accuracy)):
        if old_json.exists() and key in json.loads(old_json.read_text()):
            results[key] = json.loads(old_json.read_text())[key]
            text = text.rstrip("\n") + "\n\n" + module.markdown(results[key])
    # And the runs on machines of other kinds (--section), as they were written.
    for key, (value, section) in machine_sections().items():
        results[key] = value
        text = text.rstrip("\n") + "\n\n" + section
    (ROOT / "BENCHMARKS.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "BENCHMARKS.md").write_text(text)
    print(f"\nwrote {ROOT / 'BENCHMARKS.md'} and {ROOT / 'BENCHMARKS.json'}")


def machine_markers(kind: str, kernel_set: str) -> tuple[str, str]:
    """The markers around a section that a script's --section wrote: one per script ("run",
    "reduced precision") and kernel set."""
    return (f"<!-- {kind} with the {kernel_set} kernel set: begin -->",
            f"<!-- {kind} with the {kernel_set} kernel set: end -->")


def machine_sections() -> dict[str, tuple[dict, str]]:
    """The sections that --section wrote into BENCHMARKS.md, by their key in BENCHMARKS.json:
    the numbers and the text, markers included."""
    md_path, json_path = ROOT / "BENCHMARKS.md", ROOT / "BENCHMARKS.json"
    if not md_path.exists() or not json_path.exists():
        return {}
    text, found = md_path.read_text(), {}
    for key, value in json.loads(json_path.read_text()).items():
        if "@" not in key:
            continue
        begin, end = machine_markers(*key.split("@"))
        if begin in text and end in text:
            found[key] = (value, text[text.index(begin):text.index(end) + len(end)] + "\n")
    return found


def write_machine_section(kind: str, info: dict, text: str, result: dict) -> None:
    """A whole run's markdown (headed by "# ..." or "## ...") as a section of its own for a
    machine of another kind than the main run's: its title names the machine and the kernel set
    in use, its other headings go one level down; kept by later runs of the main suite."""
    begin, end = machine_markers(kind, info["kernel_set"])
    lines = [line for line in text.rstrip("\n").splitlines() if not line.startswith("<!--")]
    level = len(lines[0]) - len(lines[0].lstrip("#"))
    title = (f"## {lines[0][level:].strip()}, on a machine of another kind: {info['cpu']}, "
             f"kernel set `{info['kernel_set']}`")
    body = ["#" * (2 - level) + line if line.startswith("#") else line for line in lines[1:]]
    write_section(begin, end, "\n".join([begin, title, *body, end]) + "\n",
                  f"{kind}@{info['kernel_set']}", result)


def write_section(begin: str, end: str, section: str, key: str, result: dict) -> None:
    """Puts a section of its own (a script's --write) into BENCHMARKS.md, replacing the one
    between its markers, and its numbers into BENCHMARKS.json under key."""
    md_path, json_path = ROOT / "BENCHMARKS.md", ROOT / "BENCHMARKS.json"
    text = md_path.read_text() if md_path.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md_path.write_text(text)
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    data[key] = result
    json_path.write_text(json.dumps(data, indent=1) + "\n")


# The targets: how many times faster than each peer, per shape (training vs torch,
# inference vs torch, inference vs ONNX Runtime).
TARGETS = {
    "stream": (30, 16, 2.0), "small": (5.5, 3, 2.2), "medium": (1.4, 1.4, 1.8),
    "large": (1.25, 1.2, 1.0), "wide": (1.5, 1.5, 1.5),
}


def packed_bound_ms(bounds, cell) -> float:
    """The packed kernel's products, split as the library splits them: by rows, or in
    inference with fewer rows than threads by hidden units."""
    measured = bounds[(cell.shape, cell.threads)]
    step_us = measured["packed_step_us" if cell.mode == "training" else "packed_units_step_us"]
    steps_ms = cell.dims[0] * step_us / 1e3
    return (measured["packed_projection_ms"] + steps_ms) * cell.forward_equivalents


def one_thread_speedup(cell) -> float | None:
    """eigengru's time at 1 thread over its time in the cell ("vs 1 thread"), from the 1-thread
    calls timed in the cell; None for a cell without them."""
    one = cell.timings.get(bench.ONE_THREAD)
    return one.median_ms / cell.timings["eigengru"].median_ms if one is not None else None


def peak_gflops(bounds, threads: int) -> float:
    """The cores' multiply-add peak at this thread count: the best of the run's measurements
    (one per shape), since a measurement taken while a neighbour held a core reads low."""
    return max(v["multiply_add_peak_gflops"] for k, v in bounds.items() if k[1] == threads)


def peak_ms(bounds, cell) -> float:
    """The cell's multiply-adds at the cores' measured peak rate: what no implementation beats."""
    flops = bench.forward_flops(*cell.dims) * cell.forward_equivalents
    return flops / (peak_gflops(bounds, cell.threads) * 1e9) * 1e3


def targets_table(cells, bounds) -> str:
    """Each target against the measured ratio, and the most the GEMM bound would allow: a peer's
    time over the bare products' time (eigengru's own kernel, the faster one here), and over the
    time of the multiply-adds at the cores' peak rate."""
    lines = ["| shape | threads | target | measured | bound allows at most | peak allows at most "
             "| status |",
             "|---|---|---|---|---|---|---|"]
    for cell in cells:
        if cell.shape not in TARGETS:
            continue
        train, infer, ort = TARGETS[cell.shape]
        goals = ([("training vs torch", "torch", train)] if cell.mode == "training" else
                 [("inference vs torch", "torch", infer),
                  ("inference vs ONNX Runtime", "onnxruntime", ort)])
        for label, peer, goal in goals:
            ratio = cell.ratio(peer)
            if ratio is None:
                continue
            peer_ms = cell.timings[peer].median_ms
            ceiling = peer_ms / packed_bound_ms(bounds, cell)
            status = ("met" if ratio >= goal else
                      "out of reach: the bound is below the target" if ceiling < goal else
                      f"not met ({ratio / goal:.0%} of the target)")
            lines.append(f"| {cell.shape} | {cell.threads} | {label} >= {goal}x | "
                         f"{ratio:.2f}x | {ceiling:.2f}x | {peer_ms / peak_ms(bounds, cell):.2f}x "
                         f"| {status} |")
    return "\n".join(lines)


#: Every cell's share of the packed-kernel bound at 1 thread and with more threads, and its
#: lead over the fastest peer.
BOUND_SHARE_ONE_THREAD, BOUND_SHARE_THREADS = 0.90, 0.85
PEER_LEAD = 1.25


def limits_section(cells, bounds, jax_cells) -> str:
    """Every cell against the targets that hold for all of them: a share of the packed-kernel
    bound, no slower with more threads, and ahead of the fastest peer (torch, ONNX Runtime, and
    JAX from its own section, as how many times faster eigengru was in JAX's process)."""
    jax = {(c["shape"], c["threads"], c["mode"]): c["timings"] for c in jax_cells}
    lines = ["| shape | threads | mode | of packed bound | target | vs 1 thread | fastest peer "
             "| x vs it | bound allows at most | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    meeting = 0
    for cell in cells:
        ms = cell.timings["eigengru"].median_ms
        packed = packed_bound_ms(bounds, cell)
        share_goal = BOUND_SHARE_ONE_THREAD if cell.threads == 1 else BOUND_SHARE_THREADS
        leads = {p: cell.ratio(p) for p in ("torch", "onnxruntime") if p in cell.timings}
        peer_ms = {p: cell.timings[p].median_ms for p in leads}
        if (cell.shape, cell.threads, cell.mode) in jax:
            timings = jax[(cell.shape, cell.threads, cell.mode)]
            peer_ms["jax"] = timings["jax"]["median_ms"]
            leads["jax"] = peer_ms["jax"] / timings["eigengru"]["median_ms"]
        peer = min(leads, key=leads.get) if leads else None
        scaling = one_thread_speedup(cell)
        status = []
        if packed / ms < share_goal:
            status.append(f"{packed / ms:.0%} of the bound, short of {share_goal:.0%}")
        if scaling is not None and round(scaling, 2) < 1.0:  # as the column shows it
            status.append(f"{scaling:.2f}x its 1-thread time")
        ceiling = None
        if peer is not None:
            ceiling = peer_ms[peer] / packed
            if leads[peer] < PEER_LEAD:
                status.append(f"{leads[peer]:.2f}x {peer}" +
                              (": out of reach, the bound is below the target"
                               if ceiling < PEER_LEAD else ""))
        meeting += not status
        lines.append(
            f"| {cell.shape} | {cell.threads} | {cell.mode} | {packed / ms:.0%} | "
            f">= {share_goal:.0%} | {'-' if scaling is None else f'{scaling:.2f}x'} | "
            f"{peer or '-'} | {'-' if peer is None else f'{leads[peer]:.2f}x'} | "
            f"{'-' if ceiling is None else f'{ceiling:.2f}x'} | "
            f"{'; '.join(status) or 'met'} |")
    table = "\n".join(lines)
    text = textwrap.fill(
        "Each cell of the main table against the targets that hold for every cell: a share of "
        f"the packed-kernel bound ({BOUND_SHARE_ONE_THREAD:.0%} at 1 thread and "
        f"{BOUND_SHARE_THREADS:.0%} with more threads); no slower with more threads than with 1 "
        f'("vs 1 thread", at least 1.00x as shown); and at least {PEER_LEAD}x the fastest of the '
        'peers measured ("x vs it"; for JAX, the ratio of its own section). "bound allows at most" '
        "is that peer's time over the packed-kernel bound: where it is below "
        f"{PEER_LEAD}x, no GRU doing these products can be that far ahead here. The bound "
        "leaves out the gates, which every GRU computes. "
        f"{meeting} of {len(cells)} cells meet every target.", width=99,
        break_on_hyphens=False)
    return f"## Every cell at the limit\n\n{text}\n\n{table}\n"


def best_rounds(a: bench.Cell, b: bench.Cell) -> bench.Cell:
    """One cell timed in two rounds: each library's round with the lower median. A round is the
    same calls minutes apart; on this shared host another guest's load slows whole rounds,
    the peers' as much as eigengru's, and a library's best round is its speed on a quiet
    machine."""
    best = bench.Cell(a.shape, a.dims, a.threads, a.mode)
    for name in a.timings.keys() | b.timings.keys():
        times = [c.timings[name] for c in (a, b) if name in c.timings]
        best.timings[name] = min(times, key=lambda t: t.median_ms)
    return best


def faster_bound(kept: dict | None, measured: dict) -> dict:
    """The bounds of two rounds' gemm_bound runs: each product's faster time (a bound is what
    no implementation beats, so its fastest measurement counts), the higher multiply-add peak
    and the shorter round trip between the cores."""
    if kept is None:
        return measured
    faster = {k: min(kept[k], v) if k.endswith(("_ms", "_us", "_ns")) else v
              for k, v in measured.items()}
    faster["multiply_add_peak_gflops"] = max(kept["multiply_add_peak_gflops"],
                                             measured["multiply_add_peak_gflops"])
    return faster


def extras(bounds):
    """Extra columns: the GEMM bound, its fraction reached, and the speed-up over 1 thread."""
    def columns(cell):
        measured = bounds[(cell.shape, cell.threads)]
        bound = measured["bound_ms"] * cell.forward_equivalents
        packed = packed_bound_ms(bounds, cell)
        ms = cell.timings["eigengru"].median_ms
        scaling = one_thread_speedup(cell)
        return [f"{bound:.3f}", f"{bound / ms:.0%}", f"{packed:.3f}", f"{packed / ms:.0%}",
                "-" if scaling is None else f"{scaling:.2f}x"]
    return columns, ["Eigen GEMM bound ms", "of bound", "packed-kernel bound ms", "of bound",
                     "vs 1 thread"]


def step_loops_section(steps) -> str:
    if not steps:
        return ""
    import step_loops

    return f"""
## Step loops: one time step per call from Python (`benchmarks/step_loops.py`)

1 thread, float32, batch 1, {step_loops.TRAIN_STEPS} steps forward then one backward through
them for training (microseconds per step), inference with the state carried from call to call
under `no_grad` (microseconds per call). Medians of the repeats, libraries interleaved.
`Stream.step` passes `out=`; the one-step calls of `nn.GRU` and the GRU modules take
`(1, 1, I)` and the state.

{step_loops.markdown(steps)}"""


def markdown(info, table, memory, streaming, packing, targets, bounds, repeats,
             rounds) -> str:
    def packed_ms(library, layout):
        return next(r["ms"] for r in packing if r["library"] == library and r["input"] == layout)

    round_trips = ", ".join(f"{k[0]} {v['core_round_trip_ns']:.0f} ns" for k, v in bounds.items()
                            if v.get("core_round_trip_ns"))
    round_trip_note = f"""
Inference with fewer rows than threads splits a layer's hidden units over them when each gets
64 or more (not the stream shape's 64 units, which run on one thread at any setting); the
threads then pass cache lines to each other at every step, at the speed the cores exchange
them: two threads passed a cache line there and back in {round_trips} (measured before each
shape's cells; the host moves this VM's cores, and the round trip measured 100-190 ns on some
minutes and about 400-500 ns on others).
""" if round_trips else ""
    peaks = ", ".join(f"{peak_gflops(bounds, n):.0f} GFLOP/s at {n} thread{'s' * (n > 1)}"
                      for n in sorted({k[1] for k in bounds}))
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    memory_line = ", ".join(
        f"{k} {v['extra_mb']:.0f} MB" + (f" (training cache {v['cache_bytes'] / 2**20:.0f} MB)"
                                         if "cache_bytes" in v else "")
        for k, v in memory.items())
    return f"""# Benchmarks

Written by `python benchmarks/run.py` on {info['date']}.

- Machine: {info['cpu']}, {info['cores']} cores, {', '.join(info['isa'])}
- Build: {info['compiler']}, Eigen {info['eigen']} ({info['simd']})
- Kernel set in use: {info['kernel_set']}
- Versions: {versions}

float32, the same weights and inputs for every library. Median of the repeats after a warm-up (at
least {repeats}; a cell repeats until its timed calls add up to {bench.MIN_SECONDS:g} s, at most
{bench.MAX_REPEATS} times), every cell timed in {rounds} rounds minutes apart, each library's
round with the lower median kept (with its min-max, in brackets; the bounds likewise take each
round's faster products): on this shared host another guest's load slows whole minutes, and a
run of one round timed the stream shape's inference at 0.66 ms (0.51-1.00) where runs minutes
before and after took 0.50-0.52 ms. Libraries are interleaved repeat by repeat, each
timed call right after an untimed call of the same library: every library is timed as in a loop of
its own calls, not while the core recovers from the previous library's work (right after torch's
GRU, a 0.56 ms eigengru call took 0.1 ms longer and ONNX Runtime's 1.0 ms call 0.13 ms longer).
Inference: `gru(x)` against `torch.nn.GRU` under `inference_mode` and ONNX Runtime's GRU operator.
Training: eigengru's training forward + backward against torch autograd with the input requiring
grad (both compute dx and every weight gradient). GFLOP/s counts 2·T·B·3H·(I+H) per forward, 3x
that for training. "x vs" is how many times faster eigengru is. The Eigen GEMM bound is one
input-projection product plus T recurrent products, timed in C++ with the same Eigen build
(`benchmarks/gemm_bound.cpp`, the fastest of its repeats), 3x for training; the packed-kernel
bound is the same products done by eigengru's own packed kernel (`PackedMatrix`, of the kernel
set in use), a tighter bound since
that kernel is faster than Eigen's generic product here, split over the threads as the library
splits them (by rows; in inference with fewer rows than threads, by hidden units). "of bound" is
a bound over eigengru's time (above 100% means faster than the bare products, which happens when
the bound's products are slower than the library's). "vs 1 thread" is eigengru's time at 1 thread
over its time at this thread count, the 1-thread calls timed in the same cell, interleaved with
the others: on this shared host the load on the second core changes from minute to minute, and
cells timed minutes apart put the stream shape's inference, which runs on one thread at any
setting, at 0.94x and at 1.10x of itself.

{table}
{round_trip_note}
Peak extra resident memory of one training forward+backward on the large shape, each in a fresh
process: {memory_line}.

## Targets against this run

"bound allows at most" is the peer's time over the packed-kernel GEMM bound: no GRU that does the
same products can be faster than that here. Where it is below the target, the target cannot be met
on this machine by any implementation that uses these products. "peak allows at most" is the peer's
time over the time the cell's multiply-adds take at the cores' peak rate, measured in the same run
({peaks}, the best of one measurement per shape: vector multiply-adds on registers, no memory
traffic), with the gates free: an absolute
ceiling, which no product reaches (the packed kernel runs at about 90% of it on the larger
products) and which leaves nothing for the gates. The machine is shared: medians move by about
5-10% from run to run (the peers' too), so a cell within a few percent of its target can be met in
one run and not in the next; sub-millisecond cells at 2 threads move most, since their threads
compete with whatever else the two cores run.

{targets}

## Streaming, one step at batch 1 (C++ `eigengru::Stream::step`, `benchmarks/stream_latency.cpp`)

"products alone" is the step's two matrix-vector products with the packed kernel: at batch 1 they
read every weight once per step, so their time is the time to stream the weights ("weights",
float32) from the cache that holds them; the rest of a step is the gates and the state update.

| I, H | mean ns per step | median | p99 | sequence forward, ns per step | products alone, ns \
| weights |
|---|---|---|---|---|---|---|
""" + "".join(f"| {r['input_size']}, {r['hidden_size']} | {r['step_mean_ns']:.0f} | "
              f"{r['step_median_ns']:.0f} | {r['step_p99_ns']:.0f} | "
              f"{r['sequence_per_step_ns']:.0f} | {r['products_ns']:.0f} | "
              f"{r['weight_bytes'] / 1024:.0f} KB |\n" for r in streaming) + ("""
## PackedSequence against the padded batch (training, medium shape, lengths T/2..T, 1 thread)

| library | padded ms | packed ms |
|---|---|---|
""" + "".join(f"| {lib} | {packed_ms(lib, 'padded'):.1f} | {packed_ms(lib, 'packed'):.1f} |\n"
              for lib in dict.fromkeys(r["library"] for r in packing)) if packing else "")


if __name__ == "__main__":
    main()
