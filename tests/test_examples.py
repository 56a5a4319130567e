"""The example programs run and do what they say (short versions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args):
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], check=False,
                          capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_adding_problem_loss_falls():
    out = run("train_adding_problem.py", "--steps", "100", "--seq-len", "20")
    losses = [float(v) for v in re.findall(r"mse (\d+\.\d+)", out)]
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]


def test_torch_drop_in_trains_both_with_equal_losses():
    pytest.importorskip("torch", reason="needs PyTorch")
    out = run("torch_drop_in.py", "--epochs", "1")
    pairs = re.findall(r"torch.nn.GRU loss (\S+) in .* eigengru.torch.GRU loss (\S+) in", out)
    assert len(pairs) == 2  # padded and packed
    for reference, ours in pairs:
        assert abs(float(reference) - float(ours)) <= 1e-4 * abs(float(reference))
