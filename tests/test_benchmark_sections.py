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
