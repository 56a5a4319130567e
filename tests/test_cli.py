"""The eigengru command: a tiny training run, the benchmark, info, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import eigengru
from eigengru import cli
from eigengru.optim import Adam, clip_grad_norm


def eigengru_command(*args):
    return subprocess.run([sys.executable, "-m", "eigengru", *args], check=False,
                          capture_output=True, text=True, timeout=300)


def test_train_learns_the_adding_problem_and_saves_its_outputs(tmp_path):
    done = eigengru_command("train", "--seq-len", "20", "--steps", "400", "--hidden", "32",
                            "--no-progress", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["final_loss"] < 0.5 * run["trivial_loss"]  # well on the way in 400 steps
    assert len(run["losses"]) == 400
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = eigengru.GRU.load(tmp_path / "model.npz")
    assert model.hidden_size == 32 and model.input_size == 2
    assert "final mse" in done.stdout and "steps/s" in done.stdout


def test_train_copy_task_runs(tmp_path):
    assert cli.main(["train", "--task", "copy", "--seq-len", "13", "--steps", "30",
                     "--no-progress", "--out", str(tmp_path)]) == 0
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["loss_name"] == "cross-entropy" and np.isfinite(run["final_loss"])


@pytest.mark.parametrize("args, message", [
    (["train", "--steps", "0"], "--steps: expected a positive int"),
    (["train", "--task", "sorting"], "invalid choice: 'sorting'"),
    (["train", "--task", "copy", "--seq-len", "4"], "the copy task needs at least 11 steps"),
    (["bench", "--shape", "10,2"], "--shape: expected T,B,I,H"),
    (["bench", "--threads", "0"], "--threads: counts must be at least 1"),
])
def test_errors_are_one_line(args, message, capsys):
    assert cli.main(args) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_prints_a_table(capsys):
    assert cli.main(["bench", "--shape", "5,2,3,4", "--threads", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 5,2,3,4 (5,2,3,4) | 1 | inference |" in out and "training" in out


def test_info_names_the_build(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("compiler", "SIMD", "Eigen", "OpenMP", "PyTorch interop"):
        assert key in out


def test_help_of_each_command():
    for command in ("train", "bench", "info"):
        done = eigengru_command(command, "--help")
        assert done.returncode == 0 and "usage: eigengru " + command in done.stdout


def test_adam_minimises_a_quadratic_and_clipping_bounds_the_norm():
    x = {"x": np.array([3.0, -2.0])}
    optimizer = Adam(x, lr=0.1)
    for _ in range(300):
        optimizer.step({"x": 2 * x["x"]})
    assert np.abs(x["x"]).max() < 1e-2
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(grads["a"] ** 2 + grads["b"] ** 2)[0] == pytest.approx(1.0)
