"""Weights from PyTorch, Keras, ONNX and the seed formulation, each checked against an oracle."""

from __future__ import annotations

import numpy as np
import pytest

import eigengru
from eigengru import interop

from .conftest import assert_close
from .test_seed_formulation import seed_formulation_gru

T, B, I, H = 6, 3, 4, 5


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# -- Keras: the cell written out in Keras's own layout, (z, r, h) columns ----------------------
def keras_gru(kernel, recurrent_kernel, bias, xs, h, reset_after):
    """Keras's GRU equations for one sequence, written from its documentation."""
    hidden = recurrent_kernel.shape[0]
    if reset_after:
        input_bias, recurrent_bias = bias
    else:
        input_bias, recurrent_bias = bias, np.zeros(3 * hidden)
    cols = [slice(k * hidden, (k + 1) * hidden) for k in range(3)]  # z, r, h
    states = []
    for x in xs:
        x_z, x_r, x_h = (x @ kernel[:, c] + input_bias[c] for c in cols)
        z = sigmoid(x_z + h @ recurrent_kernel[:, cols[0]] + recurrent_bias[cols[0]])
        r = sigmoid(x_r + h @ recurrent_kernel[:, cols[1]] + recurrent_bias[cols[1]])
        if reset_after:
            recurrent_h = r * (h @ recurrent_kernel[:, cols[2]] + recurrent_bias[cols[2]])
        else:
            recurrent_h = (r * h) @ recurrent_kernel[:, cols[2]]
        hh = np.tanh(x_h + recurrent_h)
        h = z * h + (1 - z) * hh
        states.append(h)
    return np.array(states)


@pytest.mark.parametrize("reset_after", [True, False])
def test_from_keras_matches_the_keras_cell(rng, reset_after):
    kernel = rng.uniform(-0.5, 0.5, (I, 3 * H))
    recurrent = rng.uniform(-0.5, 0.5, (H, 3 * H))
    bias = rng.uniform(-0.5, 0.5, (2, 3 * H) if reset_after else (3 * H,))
    xs = rng.standard_normal((T, I))
    h0 = rng.uniform(-0.5, 0.5, H)
    gru = interop.from_keras(kernel, recurrent, bias, reset_after=reset_after, dtype=np.float64)
    out, _ = gru(xs, h0[None])
    assert_close(out, keras_gru(kernel, recurrent, bias, xs, h0, reset_after), np.float64, "out")
    with pytest.raises(ValueError, match=r"bias: expected shape"):
        interop.from_keras(kernel, recurrent, bias[..., :-1], reset_after=reset_after)


def test_from_seed_computes_the_seed_formulation(rng):
    W_z, W_r, W = (rng.uniform(-0.7, 0.7, (H, H + I)) for _ in range(3))
    xs = rng.standard_normal((T, I))
    h0 = rng.uniform(-0.5, 0.5, H)
    gru = interop.from_seed(W_z, W_r, W, dtype=np.float64)
    assert not gru.reset_after and not gru.bias
    out, _ = gru(xs, h0[None])
    assert_close(out, seed_formulation_gru(W_z, W_r, W, xs, h0), np.float64, "out")


# -- ONNX Runtime as the oracle ----------------------------------------------------------------
onnx = pytest.importorskip("onnx", reason="the ONNX tests need onnx and onnxruntime")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the oracle here")


def onnx_gru_model(W, R, Bias, linear_before_reset, direction):
    """An ONNX model with one GRU node, built here independently of eigengru.interop."""
    from onnx import TensorProto, helper, numpy_helper

    D = W.shape[0]
    graph = helper.make_graph(
        [helper.make_node("GRU", ["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"],
                          hidden_size=H, direction=direction,
                          linear_before_reset=linear_before_reset)],
        "oracle",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I]),
         helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [D, B, H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, D, B, H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [D, B, H])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
         numpy_helper.from_array(Bias, "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]).SerializeToString()


def run_onnx(model_bytes, feeds):
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def as_onnx_y(out, directions):
    """(T, B, D*H) -> ONNX's Y layout [T, D, B, H]."""
    return out.reshape(out.shape[0], out.shape[1], directions, H).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_from_onnx_matches_onnx_runtime(rng, direction, linear_before_reset):
    D = 2 if direction == "bidirectional" else 1
    W = rng.uniform(-0.6, 0.6, (D, 3 * H, I)).astype(np.float32)
    R = rng.uniform(-0.6, 0.6, (D, 3 * H, H)).astype(np.float32)
    Bias = rng.uniform(-0.6, 0.6, (D, 6 * H)).astype(np.float32)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (D, B, H)).astype(np.float32)
    lengths = np.array([T, 2, 4], dtype=np.int32)
    y, y_h = run_onnx(onnx_gru_model(W, R, Bias, linear_before_reset, direction),
                      {"X": x, "sequence_lens": lengths, "initial_h": h0})
    gru = interop.from_onnx(W, R, Bias, linear_before_reset=linear_before_reset,
                            direction=direction)
    assert gru.reset_after == bool(linear_before_reset)
    out, h_n = gru(x, h0, lengths=lengths)
    assert_close(as_onnx_y(out, D), y, np.float32, "Y")
    assert_close(h_n, y_h, np.float32, "Y_h")


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
def test_to_onnx_runs_in_onnx_runtime_and_reads_back(rng, tmp_path, bidirectional, reset_after):
    gru = eigengru.GRU(I, H, bidirectional=bidirectional, reset_after=reset_after, seed=7)
    D = gru.directions
    path = tmp_path / "gru.onnx"
    interop.to_onnx(gru, path, initial_state=True, lengths=True)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (D, B, H)).astype(np.float32)
    lengths = np.array([3, T, 1], dtype=np.int32)
    y, y_h = run_onnx(path.read_bytes(), {"X": x, "sequence_lens": lengths, "initial_h": h0})
    out, h_n = gru(x, h0, lengths=lengths)
    assert_close(as_onnx_y(out, D), y, np.float32, "Y")
    assert_close(h_n, y_h, np.float32, "Y_h")

    back = interop.from_onnx_model(path)
    assert back.config() == gru.config()
    for name, p in gru.parameters():
        np.testing.assert_array_equal(getattr(back, name), p)


def test_onnx_errors(rng):
    with pytest.raises(ValueError, match="direction: expected 'forward', 'reverse' or "):
        interop.from_onnx(np.zeros((1, 3 * H, I)), np.zeros((1, 3 * H, H)), direction="back")
    with pytest.raises(ValueError, match=r"R: expected shape \[2, 3H, H\]"):
        interop.from_onnx(np.zeros((1, 3 * H, I)), np.zeros((1, 3 * H, H)),
                          direction="bidirectional")


# -- PyTorch ---------------------------------------------------------------------------------
def test_from_torch_and_back():
    torch = pytest.importorskip("torch", reason="needs PyTorch")
    module = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True,
                          dtype=torch.float64)
    x = np.random.default_rng(0).standard_normal((B, T, I))
    expected = module(torch.tensor(x))[0].detach().numpy()
    for source in (module, module.state_dict()):
        gru = interop.from_torch(source, batch_first=True)
        assert gru.dtype == np.float64 and gru.num_layers == 2 and gru.bidirectional
        assert_close(gru(x)[0], expected, np.float64, "out")
    twin = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    twin.load_state_dict(interop.to_torch_state_dict(gru))
    for name, p in twin.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), getattr(gru, name))


@pytest.mark.parametrize("weights", [np.float32, np.float64, np.float16])
def test_every_importer_keeps_the_weights_dtype(rng, weights):
    """float32 and float64 weights give a model of their dtype, anything else float32;
    dtype= decides when given."""
    expected = np.dtype(np.float64 if weights == np.float64 else np.float32)

    def arrays(*shapes):
        return [rng.standard_normal(s).astype(weights) for s in shapes]

    def imports(**dtype):
        yield "from_keras", interop.from_keras(*arrays((I, 3 * H), (H, 3 * H), (2, 3 * H)),
                                               **dtype)
        yield "from_seed", interop.from_seed(*arrays((H, H + I), (H, H + I), (H, H + I)),
                                             **dtype)
        yield "from_onnx", interop.from_onnx(*arrays((1, 3 * H, I), (1, 3 * H, H), (1, 6 * H)),
                                             **dtype)
        state = eigengru.GRU(I, H, dtype=np.float64).state_dict()
        yield "from_torch", interop.from_torch({k: v.astype(weights) for k, v in state.items()},
                                               **dtype)

    for name, gru in imports():
        assert gru.dtype == expected, name
    for name, gru in imports(dtype=np.float64):
        assert gru.dtype == np.float64, name
