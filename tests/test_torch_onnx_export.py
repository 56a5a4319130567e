"""torch.onnx.export of a model that contains eigengru.torch.GRU writes standard ONNX GRU nodes,
and ONNX Runtime runs the file with the module's outputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")
onnx = pytest.importorskip("onnx", reason="the ONNX tests need onnx (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript")

from torch import nn  # noqa: E402

import eigengru.torch as egt  # noqa: E402

from .conftest import assert_close  # noqa: E402

T, B, I, H = 6, 3, 4, 5

# torch's exporter reports its progress and optional packages through warnings and logs.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


class Model(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.rnn = egt.GRU(I, H, **kwargs)
        self.head = nn.Linear(H * (2 if kwargs.get("bidirectional") else 1), 2)

    def forward(self, x, h):
        out, h_n = self.rnn(x, h)
        return torch.tanh(self.head(out)), h_n


SHAPES = [(1, False, False, True), (2, True, True, True), (3, False, True, False)]
CASES = [dict(reset_after=r, num_layers=n, bidirectional=bi, batch_first=bf, bias=bias)
         for r, (n, bi, bf, bias) in itertools.product([True, False], SHAPES)]


def case_id(case):
    return "-".join(f"{k}={int(v)}" for k, v in case.items())


def run_onnx(path, *arrays):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_default_exporter_writes_gru_nodes_that_onnx_runtime_runs(case, tmp_path):
    torch.manual_seed(0)
    model = Model(**case).eval()
    directions = 2 if case["bidirectional"] else 1
    shape = (B, T, I) if case["batch_first"] else (T, B, I)
    x = torch.randn(shape)
    h = torch.randn(case["num_layers"] * directions, B, H)
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x, h), path)
    graph = onnx.load(path).graph
    grus = [node for node in graph.node if node.op_type == "GRU"]
    assert len(grus) == case["num_layers"]
    for node in grus:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["linear_before_reset"] == int(case["reset_after"])
        assert attributes["direction"] == (b"bidirectional" if directions == 2 else b"forward")
    # Other data than the example's: the file computes, it does not replay.
    g = torch.Generator().manual_seed(1)
    x2, h2 = torch.randn(shape, generator=g), torch.randn(h.shape, generator=g)
    with torch.no_grad():
        expected = model(x2, h2)
    for what, a, e in zip(("out", "h_n"), run_onnx(path, x2.numpy(), h2.numpy()), expected):
        assert_close(a, e.numpy(), np.float32, what)


def test_dynamic_batch_and_steps(tmp_path):
    torch.manual_seed(2)
    model = Model(num_layers=2, reset_after=False).eval()
    x, h = torch.randn(T, B, I), torch.randn(2, B, H)
    steps, batch = torch.export.Dim("steps"), torch.export.Dim("batch")
    path = tmp_path / "dynamic.onnx"
    torch.onnx.export(model, (x, h), path,
                      dynamic_shapes=({0: steps, 1: batch}, {1: batch}))
    x2, h2 = torch.randn(T + 4, B + 2, I), torch.randn(2, B + 2, H)
    with torch.no_grad():
        expected = model(x2, h2)
    for what, a, e in zip(("out", "h_n"), run_onnx(path, x2.numpy(), h2.numpy()), expected):
        assert_close(a, e.numpy(), np.float32, what)


def test_torchscript_exporter(tmp_path):
    """dynamo=False (the deprecated TorchScript exporter) goes through nn.GRU's operator:
    reset_after=True exports; reset_after=False is refused with what to use instead."""
    torch.manual_seed(3)
    model = Model(num_layers=2, bidirectional=True).eval()
    x, h = torch.randn(T, B, I), torch.randn(4, B, H)
    path = tmp_path / "torchscript.onnx"
    torch.onnx.export(model, (x, h), path, dynamo=False)
    assert sum(node.op_type == "GRU" for node in onnx.load(path).graph.node) == 2
    with torch.no_grad():
        expected = model(x, h)
    for what, a, e in zip(("out", "h_n"), run_onnx(path, x.numpy(), h.numpy()), expected):
        assert_close(a, e.numpy(), np.float32, what)
    with pytest.raises(RuntimeError, match=r"reset_after=False.*dynamo=True"):
        torch.onnx.export(Model(reset_after=False).eval(), (x, h[:1]), path, dynamo=False)


def test_export_refuses_dropout_in_training_mode(tmp_path):
    model = Model(num_layers=2, dropout=0.3).train()
    with pytest.raises(Exception, match=r"cannot apply dropout.*model.eval\(\)"):
        torch.onnx.export(model, (torch.randn(T, B, I), torch.randn(2, B, H)),
                          tmp_path / "x.onnx")
