"""Kernel sets side by side: one portable build running its avx512, avx2 and baseline sets
(EIGENGRU_ISA), a native build (EIGENGRU_NATIVE=ON, -march=native), and torch.nn.GRU as
shipped and restricted to AVX2 (ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2).

Each variant times every cell in a process of its own, since a kernel set is chosen once per
process and torch reads its capability at import. Variants alternate, round after round, and a
cell's time is the best round's median: on a shared machine, other guests' load only ever
slows a round down, and by more than the differences measured here, which the median of a few
rounds does not remove (BENCHMARKS.md has the numbers).

    python benchmarks/kernel_sets.py [--threads 1,2] [--rounds 3] [--repeats 5]

prints the table; --write puts it into BENCHMARKS.md. The native build is made once, into
build/native-package (pip install --target, about a minute).

    python benchmarks/kernel_sets.py --variants avx512 --against DIR

times this checkout's build against another one installed into DIR (pip install --target DIR,
of an earlier commit, say) in the same alternating rounds, and prints this / that per cell.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE_PACKAGE = ROOT / "build" / "native-package"
SAVED = ROOT / "build" / "kernel_sets.json"
#: BENCHMARKS.md's kernel-set section lies between these lines; benchmarks/run.py keeps it.
BEGIN, END = "<!-- kernel sets: begin -->", "<!-- kernel sets: end -->"

#: name: (library, environment, the folder of the eigengru build it runs, None: this checkout's)
VARIANTS = {
    "avx512": ("eigengru", {"EIGENGRU_ISA": "avx512"}, None),
    "native": ("eigengru", {"EIGENGRU_ISA": "auto"}, NATIVE_PACKAGE),
    "avx2": ("eigengru", {"EIGENGRU_ISA": "avx2"}, None),
    "baseline": ("eigengru", {"EIGENGRU_ISA": "baseline"}, None),
    "torch": ("torch", {}, None),
    "torch-avx2": ("torch", {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
                   None),
}
#: A timed cell's repeats continue until they add up to this many seconds (at most 51 repeats).
MIN_SECONDS = 0.5


def build_native() -> None:
    """The package built with EIGENGRU_NATIVE=ON, into NATIVE_PACKAGE."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-build-isolation", "--no-deps", "--upgrade", "--target",
                    str(NATIVE_PACKAGE), "-Ccmake.define.EIGENGRU_NATIVE=ON",
                    f"-Cbuild-dir={ROOT / 'build' / 'native'}", str(ROOT)],
                   check=True, cwd=ROOT)


def time_variant(library: str, cells, repeats: int) -> dict:
    """In the worker: the median time of each cell for one library."""
    import eigengru
    from eigengru import bench

    results = []
    for shape, threads, mode in cells:
        dims = bench.SHAPES[shape]
        eigengru.set_num_threads(threads)
        run = bench._runners(dims, mode, threads, [library] if library != "eigengru" else [],
                             seed=0)[library]
        run()
        run()
        samples: list[float] = []
        while len(samples) < repeats or (len(samples) < 51 and sum(samples) < MIN_SECONDS):
            run()  # untimed: each timed call follows one of the same library, as in bench.py
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
        results.append({"shape": shape, "threads": threads, "mode": mode,
                        "median_ms": statistics.median(samples) * 1e3})
    info = {"isa": eigengru.build_info()["isa"]}
    if library == "torch":
        import torch

        info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    return {**info, "cells": results}


def run_worker(name: str, cells, repeats: int) -> dict:
    _, env, package = VARIANTS[name]
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("EIGENGRU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")}
    environment.update(env)
    if package is not None:
        environment["PYTHONPATH"] = str(package)
    done = subprocess.run([sys.executable, __file__, "--worker", name, "--repeats", str(repeats),
                           "--cells", json.dumps(cells)], env=environment, check=True,
                          capture_output=True, text=True, cwd=ROOT / "benchmarks")
    return json.loads(done.stdout)


def measure(threads: list[int], rounds: int, repeats: int, variants=None, shapes=None) -> dict:
    """Every variant over every cell, `rounds` times; returns the medians and what ran."""
    from eigengru import _core, bench

    supported = set(_core.supported_isas())
    names = [v for v in (variants or VARIANTS)
             if VARIANTS[v][0] != "eigengru" or VARIANTS[v][2] is not None or v in supported]
    if "native" in names:
        build_native()
    cells = [(shape, n, mode) for n in threads for shape in (shapes or bench.SHAPES)
             for mode in bench.MODES]
    times: dict[str, dict[tuple, list[float]]] = {name: {} for name in names}
    ran: dict[str, dict] = {}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            result = run_worker(name, cells, repeats)
            ran[name] = {k: v for k, v in result.items() if k != "cells"}
            for cell in result["cells"]:
                key = (cell["shape"], cell["threads"], cell["mode"])
                times[name].setdefault(key, []).append(cell["median_ms"])
            print(f"round {r + 1}/{rounds}: {name} done", file=sys.stderr, flush=True)
    return {"ran": ran, "rounds": rounds, "repeats": repeats,
            "cells": [{"shape": s, "threads": n, "mode": m,
                       "ms": {name: min(times[name][(s, n, m)]) for name in names},
                       "round_medians_ms": {name: times[name][(s, n, m)] for name in names}}
                      for (s, n, m) in cells]}


def markdown(result: dict) -> str:
    from eigengru import bench

    rows = []
    header = ("| shape (T,B,I,H) | threads | mode | avx512 ms | native ms | avx512 / native | "
              "avx2 ms | baseline ms | torch ms | torch AVX2 ms | avx2 vs torch AVX2 |")
    rows.append(header)
    rows.append("|" + "---|" * (header.count("|") - 1))

    def ms(cell, name):
        value = cell["ms"].get(name)
        return f"{value:.3f}" if value is not None else "-"

    for cell in result["cells"]:
        t = cell["ms"]
        portable = (f"{t['avx512'] / t['native']:.3f}" if "avx512" in t and "native" in t
                    else "-")
        versus = (f"{t['torch-avx2'] / t['avx2']:.2f}x" if "avx2" in t and "torch-avx2" in t
                  else "-")
        dims = ",".join(map(str, bench.SHAPES[cell["shape"]]))
        rows.append(f"| {cell['shape']} ({dims}) | {cell['threads']} | {cell['mode']} | "
                    f"{ms(cell, 'avx512')} | {ms(cell, 'native')} | {portable} | "
                    f"{ms(cell, 'avx2')} | {ms(cell, 'baseline')} | {ms(cell, 'torch')} | "
                    f"{ms(cell, 'torch-avx2')} | {versus} |")
    return "\n".join(rows)


def summary(result: dict) -> str:
    """The two targets: the portable avx512 set within 3% of native, avx2 ahead of torch AVX2."""
    cells = result["cells"]
    ratios = [c["ms"]["avx512"] / c["ms"]["native"] for c in cells
              if "avx512" in c["ms"] and "native" in c["ms"]]
    versus = [c["ms"]["torch-avx2"] / c["ms"]["avx2"] for c in cells
              if "avx2" in c["ms"] and "torch-avx2" in c["ms"]]
    lines = []
    if ratios:
        slow = [c for c in cells if c["ms"]["avx512"] > 1.03 * c["ms"]["native"]]
        lines.append(f"- avx512 (portable) / native: {min(ratios):.3f} to {max(ratios):.3f}; "
                     f"{len(ratios) - len(slow)} of {len(ratios)} cells within 3%"
                     + ("" if not slow else "; over: " + ", ".join(
                         f"{c['shape']} {c['threads']}t {c['mode']} "
                         f"{c['ms']['avx512'] / c['ms']['native']:.3f}" for c in slow)))
    if versus:
        behind = [c for c in cells if c["ms"]["torch-avx2"] <= c["ms"]["avx2"]]
        lines.append(f"- avx2 vs torch restricted to AVX2: {min(versus):.2f}x to "
                     f"{max(versus):.2f}x faster; {len(versus) - len(behind)} of {len(versus)} "
                     "cells faster" + ("" if not behind else "; behind: " + ", ".join(
                         f"{c['shape']} {c['threads']}t {c['mode']}" for c in behind)))
    return "\n".join(lines)


def against(result: dict) -> str:
    """This checkout's build (its first variant) over the build in --against's folder, per cell."""
    ours = next(name for name in result["ran"] if name != "against")
    lines = [f"| shape | threads | mode | {ours} ms | against ms | {ours} / against |",
             "|---|---|---|---|---|---|"]
    for c in result["cells"]:
        a, b = c["ms"][ours], c["ms"]["against"]
        lines.append(f"| {c['shape']} | {c['threads']} | {c['mode']} | {a:.3f} | {b:.3f} | "
                     f"{a / b:.3f} |")
    ratios = [c["ms"][ours] / c["ms"]["against"] for c in result["cells"]]
    lines.append(f"\n{ours} / against: {min(ratios):.3f} to {max(ratios):.3f}, geometric mean "
                 f"{statistics.geometric_mean(ratios):.3f}")
    return "\n".join(lines)


def section(result: dict) -> str:
    """BENCHMARKS.md's section, between BEGIN and END."""
    ran = result["ran"]
    torch_line = ", ".join(f"{name}: {ran[name]['torch_capability']}"
                           for name in ("torch", "torch-avx2") if name in ran)
    return f"""{BEGIN}
## Kernel sets (`benchmarks/kernel_sets.py`)

One portable build running each of its kernel sets (`EIGENGRU_ISA`), a build with
`EIGENGRU_NATIVE=ON` (one set, `-march=native`), and `torch.nn.GRU` as shipped and restricted
to AVX2 (`ATEN_CPU_CAPABILITY=avx2`, `MKL_ENABLE_INSTRUCTIONS=AVX2`; capability in use:
{torch_line}). float32, milliseconds, each variant in a process of its own over every cell; the
variants take turns, {rounds_text(result)}, a cell's time the best round's median (at least
{result['repeats']} repeats per round, more for short cells). The best, not the median over
rounds: other guests' load on this shared machine slows whole rounds, and two runs of 4 rounds
with the median put the same build's `avx512` set at 0.82x and at 1.44x of the native build in
one cell (small, 2 threads, inference). Machine: as at the top. Targets: the portable `avx512`
set within 3% of native (`avx512 / native` at most 1.03), the `avx2` set faster than torch
restricted to AVX2 in every cell.

{summary(result)}

{markdown(result)}
{END}"""


def rounds_text(result: dict) -> str:
    """How many rounds, and which variants ran together (see merged())."""
    runs = result.get("runs")
    if not runs:
        return f"{result['rounds']} rounds"
    return "; ".join(f"{', '.join(f'`{v}`' for v in run['variants'])}: {run['rounds']} rounds"
                     + (" in an earlier run" if k else "") for k, run in enumerate(runs))


def merged(result: dict, earlier: dict) -> dict:
    """This run's result, with the variants it did not run taken from an earlier result of the
    same cells; each pair that the table compares (avx512 with native, avx2 with torch AVX2)
    must come from one run."""
    mine = set(result["ran"]) - {"against"}
    theirs = [v for v in earlier["ran"] if v not in mine]
    for pair in (("avx512", "native"), ("avx2", "torch-avx2")):
        if len({v in mine for v in pair}) != 1:
            raise SystemExit(f"--merge: {pair[0]} and {pair[1]} must come from the same run")
    by_cell = {(c["shape"], c["threads"], c["mode"]): c for c in earlier["cells"]}
    cells = []
    for c in result["cells"]:
        old = by_cell[(c["shape"], c["threads"], c["mode"])]
        cells.append({**c, "ms": {**{v: old["ms"][v] for v in theirs},
                                  **{v: t for v, t in c["ms"].items() if v in mine}}})
    return {**result, "cells": cells,
            "ran": {**{v: earlier["ran"][v] for v in theirs},
                    **{v: r for v, r in result["ran"].items() if v in mine}},
            "runs": [{"variants": sorted(mine), "rounds": result["rounds"]},
                     {"variants": theirs, "rounds": earlier["rounds"]}]}


def write(result: dict, merge: bool) -> None:
    """Puts the section into BENCHMARKS.md (replacing an earlier one) and the result into
    BENCHMARKS.json under "kernel_sets"; with `merge`, the variants this run left out keep
    their earlier results."""
    md_path, json_path = ROOT / "BENCHMARKS.md", ROOT / "BENCHMARKS.json"
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    if merge:
        result = merged(result, data["kernel_sets"])
    text = md_path.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section(result) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section(result) + "\n"
    md_path.write_text(text)
    data["kernel_sets"] = {k: v for k, v in result.items() if k != "against"}
    json_path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", help="comma-separated names of bench.SHAPES (default: all)")
    parser.add_argument("--variants",
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--against", type=Path,
                        help="also time the eigengru installed in this folder (variant 'against')")
    parser.add_argument("--write", action="store_true",
                        help="write the table into BENCHMARKS.md and BENCHMARKS.json")
    parser.add_argument("--merge", action="store_true",
                        help="with --write: keep the earlier results of the variants not run")
    parser.add_argument("--from", dest="saved", type=Path,
                        help="the result of an earlier run (build/kernel_sets.json), not a new one")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cells", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        cells = [tuple(c) for c in json.loads(args.cells)]
        library = VARIANTS[args.worker][0] if args.worker in VARIANTS else "eigengru"  # against
        print(json.dumps(time_variant(library, cells, args.repeats)))
        return
    if args.against:
        VARIANTS["against"] = ("eigengru", {"EIGENGRU_ISA": "auto"}, args.against.resolve())
        args.variants = ",".join([*(args.variants or ",".join(VARIANTS)).split(","), "against"])
    if args.saved:
        result = json.loads(args.saved.read_text())
    else:
        result = measure([int(n) for n in args.threads.split(",")], args.rounds, args.repeats,
                         args.variants.split(",") if args.variants else None,
                         args.shapes.split(",") if args.shapes else None)
        SAVED.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["ran"]))
    print(markdown(result))
    print(summary(result))
    if "against" in result["ran"]:
        print(against(result))
    if args.write:
        write(result, args.merge)


if __name__ == "__main__":
    main()
