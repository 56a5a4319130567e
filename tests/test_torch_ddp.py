"""examples/torch_ddp.py, the DistributedDataParallel script (2 processes, gloo, barrier,
destroy_process_group, return), exits by itself, each run in a fresh pair of processes, and its
weights are those of one process training on the whole batch.

One run is undisturbed. The other starves the gloo worker threads after every collective (a
preloaded shim), which turns torch's teardown race from a rare hang into a certain one for a
script that lets DDP's reducer destroy the process group; the example's teardown must survive it."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="the DDP test needs PyTorch (torch==2.13.0)")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "torch_ddp.py"
SHIM = ROOT / "tests" / "support" / "starve_gloo_worker.c"


def load_example():
    spec = importlib.util.spec_from_file_location("torch_ddp_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def starving_environment(tmp_path):
    compiler = shutil.which(os.environ.get("CC", "cc"))
    assert compiler, "a C compiler (cc) is needed to build the gloo-starving shim"
    shim = tmp_path / "starve_gloo_worker.so"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(shim), str(SHIM), "-ldl"],
                   check=True)
    log = tmp_path / "delays.log"
    env = {**os.environ, "LD_PRELOAD": str(shim), "STARVE_US": "100000", "STARVE_LOG": str(log)}
    return env, log


@pytest.mark.parametrize("gloo", ["undisturbed", "starved"])
def test_ddp_script_exits_and_equals_one_process(gloo, tmp_path):
    env, log = starving_environment(tmp_path) if gloo == "starved" else (None, None)
    out = tmp_path / "ddp.pt"
    try:
        done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], env=env,
                              check=False, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the DDP script did not exit within 120 s (a hang at teardown)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 saved the weights" in done.stdout
    if log is not None:
        assert log.exists() and log.read_text().count("delayed") >= 4, "the shim never ran"

    example = load_example()
    torch.manual_seed(0)  # the workers' initial weights
    single = example.Model()
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    example.train(single, *example.batches(example.STEPS))
    ddp_state = torch.load(out, weights_only=True)
    for name, expected in single.state_dict().items():
        torch.testing.assert_close(ddp_state[name], expected, rtol=1e-9, atol=1e-12)
    assert any(not torch.equal(single.state_dict()[k], v) for k, v in initial.items())
