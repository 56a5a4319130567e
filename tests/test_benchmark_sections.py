"""benchmarks/run.py's sections for machines of another kind (--section): written under their
own markers with their headings one level down, replaced by the next such run, and kept by a
main run."""

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def suite(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    run = importlib.import_module("run")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n\nThe main run.\n")
    (tmp_path / "BENCHMARKS.json").write_text(json.dumps({"machine": {"cpu": "main"}}))
    yield run
    sys.modules.pop("run", None)


def test_a_section_is_written_kept_and_replaced(suite, tmp_path):
    info = {"cpu": "Some CPU", "kernel_set": "avx2"}
    suite.write_machine_section("run", info, "# Benchmarks\n\nfirst\n\n## Targets\n", {"n": 1})
    suite.write_machine_section("reduced precision", info,
                                "<!-- reduced precision: begin -->\n## Reduced precision\n\n"
                                "### Targets\n<!-- reduced precision: end -->\n", {"n": 2})
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert text.startswith("# Benchmarks\n\nThe main run.\n")
    assert "## Benchmarks, on a machine of another kind: Some CPU, kernel set `avx2`" in text
    assert "\n### Targets\n" in text and "####" not in text
    assert "<!-- reduced precision: begin -->" not in text  # the main section's markers
    assert text.count("<!-- run with the avx2 kernel set: begin -->") == 1

    suite.write_machine_section("run", info, "# Benchmarks\n\nsecond\n", {"n": 3})
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "second" in text and "first" not in text
    assert text.count("<!-- run with the avx2 kernel set: begin -->") == 1

    kept = suite.machine_sections()
    assert {k: v[0] for k, v in kept.items()} == {"run@avx2": {"n": 3},
                                                  "reduced precision@avx2": {"n": 2}}
    for _, section in kept.values():
        assert section in text and section.startswith("<!-- ") and section.endswith("-->\n")


def test_a_cell_times_one_thread_beside_its_thread_count(monkeypatch):
    """The suite's "vs 1 thread" comes from 1-thread calls timed in the same cell: those calls
    run with the library at 1 thread, the others at the cell's count, which is restored."""
    import eigengru
    from eigengru import bench

    seen = []
    real_forward = eigengru.GRU.__call__

    def forward(self, *args, **kwargs):
        seen.append(eigengru.get_num_threads())
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(eigengru.GRU, "__call__", forward)
    before = eigengru.get_num_threads()
    cell = bench.time_cell("tiny", (3, 2, 4, 16), "inference", 2, repeats=2, one_thread=True)
    assert set(cell.timings) == {"eigengru", bench.ONE_THREAD}
    assert seen.count(1) == seen.count(2) > 0 and set(seen) == {1, 2}
    assert eigengru.get_num_threads() == before
    plain = bench.time_cell("tiny", (3, 2, 4, 16), "inference", 2, repeats=2)
    assert set(plain.timings) == {"eigengru"}


def test_rounds_keep_each_librarys_best_and_the_fastest_bound(suite):
    from eigengru import bench

    def cell(**medians):
        c = bench.Cell("s", (1, 1, 1, 1), 2, "inference")
        c.timings = {k: bench.Timing(m, m - 0.1, m + 0.1) for k, m in medians.items()}
        return c

    best = suite.best_rounds(cell(eigengru=2.0, torch=5.0), cell(eigengru=3.0, torch=4.0))
    assert {k: t.median_ms for k, t in best.timings.items()} == {"eigengru": 2.0, "torch": 4.0}
    assert best.timings["torch"].min_ms == 3.9  # the kept round's own spread
    first = {"threads": 2, "bound_ms": 5.0, "packed_step_us": 2.0, "core_round_trip_ns": 90,
             "multiply_add_peak_gflops": 200.0}
    second = {"threads": 2, "bound_ms": 4.0, "packed_step_us": 3.0, "core_round_trip_ns": 120,
              "multiply_add_peak_gflops": 230.0}
    assert suite.faster_bound(first, second) == {
        "threads": 2, "bound_ms": 4.0, "packed_step_us": 2.0, "core_round_trip_ns": 90,
        "multiply_add_peak_gflops": 230.0}
    assert suite.faster_bound(None, first) is first


def test_every_cell_at_the_limit_names_what_each_cell_misses(suite):
    """The section's status per cell: met; short of its share of the bound; slower than at 1
    thread; behind the target over the fastest peer, out of reach where the peer's time over the
    bound is below it (JAX's ratio taken from its own process)."""
    from eigengru import bench

    def cell(shape, threads, ms, **peers):
        c = bench.Cell(shape, (10, 1, 4, 16), threads, "inference")
        c.timings = {k: bench.Timing(v, v, v) for k, v in {"eigengru": ms, **peers}.items()}
        return c

    # bound_ms 1.0 and no packed products: packed_bound_ms reads the packed fields
    bound = {"bound_ms": 1.0, "packed_projection_ms": 0.0, "packed_step_us": 100.0,
             "packed_units_step_us": 100.0}
    cells = [cell("a", 1, 1.05, torch=2.0),  # 95% of the bound, 1.9x: met
             cell("b", 1, 1.25, torch=2.0),  # 80%: short
             cell("c", 2, 1.05, onnxruntime=1.2, **{bench.ONE_THREAD: 1.0}),  # slower, behind
             cell("d", 1, 1.05, torch=3.0),  # JAX, the fastest peer, 1.1x in its process
             cell("e", 2, 1.004, torch=2.0, **{bench.ONE_THREAD: 1.0})]  # 1.00x as shown: met
    bounds = {(c.shape, c.threads): bound for c in cells}
    jax = [{"shape": "d", "threads": 1, "mode": "inference",
            "timings": {"eigengru": {"median_ms": 2.0}, "jax": {"median_ms": 2.2}}}]
    rows = {line.split(" | ")[0][2:]: line for line in
            suite.limits_section(cells, bounds, jax).splitlines() if line.startswith("| ")}
    assert rows["a"].endswith("| met |")
    assert "80% of the bound, short of 90%" in rows["b"]
    assert "0.95x its 1-thread time" in rows["c"]
    assert "1.14x onnxruntime: out of reach, the bound is below the target" in rows["c"]
    assert "| jax | 1.10x | 2.20x |" in rows["d"] and "1.10x jax" in rows["d"]
    assert "out of reach" not in rows["d"]  # 2.2 ms over a 1.0 ms bound allows 2.2x
    assert rows["e"].endswith("| met |") and "| 1.00x |" in rows["e"]


def test_reduced_precision_targets_say_which_a_measured_bound_rules_out(suite):
    """A target that is missed reads "not met", or "out of reach" where a bound measured in the
    same run is past it: the dot product's peak rate for a ratio, reading the weights (or their
    multiply-adds at the peak rate) for a batch-1 step."""
    reduced = importlib.import_module("reduced_precision")
    large = (50, 64, 512, 1024)  # 1.51e10 multiply-adds: 128.9 ms at 117 per ns, 64.8 at 233
    ms = {"eigengru float32": 300.0, "eigengru bfloat16": 150.0, "eigengru int8": 90.0,
          "torch bfloat16": 180.0, "torch int8": 116.0}
    steps = [{"precision": p, "input_size": i, "hidden_size": h, "step_mean_ns": got,
              "weights_read_ns": read, "weight_bytes": 1024}
             for p, i, h, got, read in [("float", 16, 64, 600, 500), ("int8", 16, 64, 222, 121),
                                        ("bfloat16", 16, 64, 240, 145),
                                        ("float", 64, 128, 3000, 2600),
                                        ("int8", 64, 128, 928, 639),
                                        ("bfloat16", 64, 128, 1635, 1337)]]
    result = {"machine": {"date": "today", "cpu": "a CPU", "cores": 2},
              "cells": [{"shape": "large", "dims": large, "threads": 1, "ms": ms, "errors": None}],
              "steps": steps, "peaks": {"float": 58.0, "bfloat16": 117.0, "int8": 233.0}}
    rows = [line for line in reduced.markdown(result).splitlines() if line.startswith("| ")]

    def status(target, cell):
        (row,) = [r for r in rows if r.startswith(f"| {target} | {cell} |")]
        return row.rsplit(" | ", 1)[1].rstrip(" |")

    assert status("bfloat16 >= 1.5x torch bfloat16", "large, 1t") == "**out of reach**"  # 1.40x
    assert status("int8 >= 1.5x torch int8", "large, 1t") == "**not met**"  # 1.79x allowed
    assert status("bfloat16 >= 1.6x eigengru float32", "large, 1t") == "met"
    assert status("Stream step <= 150 ns", "int8, (16, 64)") == "**not met**"  # 121 ns read
    assert status("Stream step <= 250 ns", "bfloat16, (16, 64)") == "met"
    assert status("Stream step <= 600 ns", "int8, (64, 128)") == "**out of reach**"
    assert status("Stream step <= 1000 ns", "bfloat16, (64, 128)") == "**out of reach**"
    sys.modules.pop("reduced_precision", None)
