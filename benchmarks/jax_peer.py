"""JAX as a peer: eigengru against a jitted ``jax.lax.scan`` GRU (forward, and
``jax.value_and_grad`` for training), at each standard shape and thread count.

    python benchmarks/jax_peer.py --threads 1,2 --repeats 9    # prints the table

JAX's CPU backend sizes its thread pool when it starts, from the cores the process may use, so
each thread count runs in a process of its own, pinned to that many cores, where eigengru and
JAX are timed interleaved as in the rest of the suite (``eigengru.bench.time_cell``).
``benchmarks/run.py`` adds this section to BENCHMARKS.md when JAX is installed
(``pip install jax``: the CPU build).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

#: XLA's single-threaded CPU matrix products, for the 1-thread cells.
ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false"


def child(threads: int, repeats: int) -> list[dict]:
    """The cells of one thread count, in this process (call before anything imports JAX)."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD_FLAGS).strip()
    from eigengru import bench

    cells = []
    for name, dims in bench.SHAPES.items():
        for mode in bench.MODES:
            cell = bench.time_cell(name, dims, mode, threads, ["jax"], repeats)
            cells.append(cell.to_dict())
            print(f"  jax peer: {name} {mode} {threads} thread(s): eigengru "
                  f"{cell.timings['eigengru'].median_ms:.3f} ms, jax "
                  f"{cell.timings['jax'].median_ms:.3f} ms", file=sys.stderr, flush=True)
    return cells


def measure(threads: list[int], repeats: int) -> list[dict]:
    """Every thread count's cells, each from a process of its own."""
    cells = []
    for n in threads:
        done = subprocess.run([sys.executable, __file__, "--child", str(n), "--repeats",
                               str(repeats)], stdout=subprocess.PIPE, text=True, check=True)
        cells += json.loads(done.stdout)
    return cells


def section(cells: list[dict]) -> str:
    """The Markdown section of BENCHMARKS.md."""
    lines = ["| shape (T,B,I,H) | threads | mode | eigengru ms | jax ms | x vs jax |",
             "|---|---|---|---|---|---|"]
    for c in cells:
        e, j = c["timings"]["eigengru"]["median_ms"], c["timings"]["jax"]["median_ms"]
        lines.append(f"| {c['shape']} ({','.join(map(str, c['dims']))}) | {c['threads']} | "
                     f"{c['mode']} | {e:.3f} | {j:.3f} | {j / e:.2f}x |")
    table = "\n".join(lines)
    return f"""## JAX (`benchmarks/jax_peer.py`)

A jitted `jax.lax.scan` GRU, written as one would (the input projection for all steps, then the
scan; training is `jax.value_and_grad` of `sum(out * grad)` with respect to the weights and the
input), checked against eigengru's output before it is timed. JAX's CPU backend sizes its
thread pool when it starts, so each thread count is a process of its own, pinned to that many
cores (1 thread: also `XLA_FLAGS={ONE_THREAD_FLAGS}`), where eigengru and JAX are timed
interleaved as above; eigengru's times here are that process's, so they differ a little from
the main table's.

{table}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.repeats)))
        return
    print(section(measure(sorted({int(t) for t in args.threads.split(",")}), args.repeats)))


if __name__ == "__main__":
    main()
