"""The quantized models' accuracy contract (README): on the five standard shapes, with
PyTorch-initialised weights and N(0, 1) inputs, against a float64 run of the same weights,
bfloat16's max |error| is at most 5e-3 and int8's at most PyTorch's own int8 GRU's
(torch.ao dynamic quantization) on the same weights and inputs; and the model that
``eigengru train`` saves for the adding problem keeps its test MSE within 1.5x of float32's."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import eigengru
from eigengru.tasks import TASKS

torch = pytest.importorskip("torch")

SHAPES = {  # (T, B, I, H), as in the benchmark suite
    "stream": (1000, 1, 16, 64),
    "small": (100, 16, 32, 64),
    "medium": (100, 64, 128, 256),
    "wide": (50, 256, 64, 128),
    "large": (50, 64, 512, 1024),
}


def torch_int8(module):
    """PyTorch's dynamically quantized int8 GRU of module (quantize_dynamic swaps children,
    so the GRU goes in a container)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(module),
                                                      {torch.nn.GRU}, dtype=torch.qint8)[0]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_accuracy_contract_on_the_standard_shapes(shape, threads):
    T, B, I, H = SHAPES[shape]
    torch.manual_seed(0)
    module = torch.nn.GRU(I, H)
    x = torch.randn(T, B, I)
    exact = torch.nn.GRU(I, H).double()
    exact.load_state_dict(module.state_dict())
    with torch.no_grad():
        want = exact(x.double())[0].numpy()
        torch_error = np.abs(torch_int8(module)(x)[0].numpy() - want).max()
    gru = eigengru.interop.from_torch(module)
    eigengru.set_num_threads(2)
    errors = {p: np.abs(gru.quantize(p)(x.numpy())[0] - want).max()
              for p in ("bfloat16", "int8")}
    float_error = np.abs(gru(x.numpy())[0] - want).max()
    print(f"{shape}: bfloat16 {errors['bfloat16']:.2e}, int8 {errors['int8']:.2e}, "
          f"torch int8 {torch_error:.2e}, float32 {float_error:.2e}")
    assert errors["bfloat16"] <= 5e-3
    assert errors["int8"] <= torch_error
    assert float_error < 1e-5 < errors["bfloat16"]  # the quantized models did quantize


def test_a_trained_model_keeps_its_test_error_when_quantized(tmp_path):
    done = subprocess.run([sys.executable, "-m", "eigengru", "train", "--seq-len", "50",
                           "--steps", "1000", "--no-progress", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    gru = eigengru.GRU.load(tmp_path / "model.npz")
    head = np.load(tmp_path / "head.npz")
    task = TASKS["adding"](50, seed=123)
    batch = task.batch(2000)

    def mse(model):
        prediction = task.readout(*model(batch.x)) @ head["weight"].T + head["bias"]
        return float(np.mean((prediction[:, 0] - batch.target) ** 2))

    float_mse = mse(gru)
    assert float_mse < 0.1 * task.baseline  # a trained model: the comparison means something
    for precision in ("bfloat16", "int8"):
        quantized_mse = mse(gru.quantize(precision))
        print(f"{precision}: test mse {quantized_mse:.5f}, float32 {float_mse:.5f}")
        assert quantized_mse <= 1.5 * float_mse, precision
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["quantized_loss"]["int8"] <= 1.5 * run["final_loss"]
    assert "quantized: bfloat16 mse" in done.stdout
