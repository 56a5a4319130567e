"""examples/torch_ddp.py, the plain DistributedDataParallel script (2 processes, gloo, barrier,
destroy_process_group, return), exits by itself, each run in a fresh pair of processes, and its
weights are those of one process training on the whole batch."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="the DDP test needs PyTorch (torch==2.13.0)")

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "examples" / "torch_ddp.py"
RUNS = 2  # each a fresh pair of processes through the whole teardown


def load_example():
    spec = importlib.util.spec_from_file_location("torch_ddp_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("run", range(RUNS))
def test_plain_ddp_script_exits_and_equals_one_process(run, tmp_path):
    out = tmp_path / "ddp.pt"
    try:
        done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the DDP script did not exit within 120 s (a hang at teardown)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 saved the weights" in done.stdout

    example = load_example()
    torch.manual_seed(0)  # the workers' initial weights
    single = example.Model()
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    example.train(single, *example.batches(example.STEPS))
    ddp_state = torch.load(out, weights_only=True)
    for name, expected in single.state_dict().items():
        torch.testing.assert_close(ddp_state[name], expected, rtol=1e-9, atol=1e-12)
    assert any(not torch.equal(single.state_dict()[k], v) for k, v in initial.items())
