"""Whole ONNX models in and out, with ONNX Runtime as the oracle: what torch.onnx.export writes
for torch.nn.GRU, what to_onnx writes for stacks and batch-first models, and every part of a
model that the importer does not apply, refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import eigengru
from eigengru import interop

from .conftest import assert_close

torch = pytest.importorskip("torch", reason="torch.onnx.export writes the models (torch==2.13.0)")
onnx = pytest.importorskip("onnx", reason="needs the onnx package")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the oracle")
pytest.importorskip("onnxscript", reason="torch.onnx.export's default exporter needs onnxscript")
from onnx import helper, numpy_helper  # noqa: E402

T, B, I, H = 5, 3, 4, 6


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, feeds)))


def export_nn_gru(tmp_path, num_layers, bidirectional, batch_first, with_hx):
    torch.manual_seed(num_layers * 4 + bidirectional * 2 + batch_first)
    module = torch.nn.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=batch_first).eval()
    x = torch.randn((B, T, I) if batch_first else (T, B, I))
    hx = 0.5 * torch.randn(num_layers * (2 if bidirectional else 1), B, H)
    path = tmp_path / "nn_gru.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x, hx) if with_hx else (x,), path, dynamo=True)
    return module, x, hx, path


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
def test_nn_gru_exports_import_as_one_model(tmp_path, num_layers, bidirectional, batch_first,
                                            with_hx):
    module, x, hx, path = export_nn_gru(tmp_path, num_layers, bidirectional, batch_first, with_hx)
    gru = interop.from_onnx_model(path)
    assert (gru.num_layers, gru.bidirectional, gru.batch_first) == (
        num_layers, bidirectional, batch_first)
    feeds = [x.numpy(), hx.numpy()] if with_hx else [x.numpy()]
    want_out, want_h_n = run_onnx(path, feeds)
    out, h_n = gru(*feeds)
    assert_close(out, want_out, np.float32, "out against ONNX Runtime")
    assert_close(h_n, want_h_n, np.float32, "h_n against ONNX Runtime")
    with torch.no_grad():
        torch_out = module(*(torch.from_numpy(f) for f in feeds))[0].numpy()
    assert_close(out, torch_out, np.float32, "out against torch.nn.GRU")


@pytest.mark.parametrize("num_layers, bidirectional, batch_first, reverse",
                         [(2, False, False, False), (3, True, False, False),
                          (1, False, True, False), (2, True, True, False),
                          (2, False, False, True), (1, False, True, True)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_to_onnx_writes_stacks_and_batch_first_models(rng, tmp_path, num_layers, bidirectional,
                                                      batch_first, reverse, reset_after):
    gru = eigengru.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional,
                       batch_first=batch_first, reverse=reverse, reset_after=reset_after, seed=3)
    path = tmp_path / "stack.onnx"
    interop.to_onnx(gru, path, initial_state=True, lengths=True)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (num_layers * gru.directions, B, H)).astype(np.float32)
    lengths = np.array([2, T, 4], dtype=np.int32)
    y, y_h = run_onnx(path, [x, lengths, h0])
    out, h_n = gru(x, h0, lengths=lengths)
    assert_close(out, y, np.float32, "Y")
    assert_close(h_n, y_h, np.float32, "Y_h")
    back = interop.from_onnx_model(path)
    assert back.config() == gru.config()
    for name, p in gru.parameters():
        np.testing.assert_array_equal(getattr(back, name), p)


# -- what is refused ----------------------------------------------------------------------------
def gru_model(tmp_path, rng, *, inputs=("X",), node_inputs=None, attributes=None, extra=(),
              initializers=None, outputs=("Y", "Y_h")):
    """A one-GRU-node model, altered by the arguments."""
    W = rng.uniform(-0.5, 0.5, (1, 3 * H, I)).astype(np.float32)
    R = rng.uniform(-0.5, 0.5, (1, 3 * H, H)).astype(np.float32)
    tensors = {"W": W, "R": R, **(initializers or {})}
    node = helper.make_node("GRU", list(node_inputs or ["X", "W", "R"]), ["Y", "Y_h"],
                            name="gru", hidden_size=H, **(attributes or {}))
    values = {"X": [T, B, I], "initial_h": [1, B, H], "Y": [T, 1, B, H], "Y_h": [1, B, H],
              "Z": [T, 1, B, H], "Rx": [1, 3 * H, H]}
    graph = helper.make_graph(
        [node, *extra], "test",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, values[n]) for n in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, values[n]) for n in outputs],
        [numpy_helper.from_array(v, k) for k, v in tensors.items()])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


def test_a_stored_initial_state_applies_only_when_zero(rng, tmp_path):
    zeros = gru_model(tmp_path, rng, node_inputs=["X", "W", "R", "", "", "h"],
                      initializers={"h": np.zeros((1, B, H), np.float32)})
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, y_h = run_onnx(zeros, [x])
    out, h_n = interop.from_onnx_model(zeros)(x)
    assert_close(out.reshape(T, B, 1, H).transpose(0, 2, 1, 3), y, np.float32, "Y, stored zeros")
    assert_close(h_n, y_h, np.float32, "Y_h with stored zeros")
    stored = gru_model(tmp_path, rng, node_inputs=["X", "W", "R", "", "", "h"],
                       initializers={"h": np.ones((1, B, H), np.float32)})
    with pytest.raises(ValueError, match=r"initial_h is stored in the model \(h\) and is not "
                                         r"zero; eigengru takes the initial state with each call"):
        interop.from_onnx_model(stored)


@pytest.mark.parametrize("change, message", [
    (dict(node_inputs=["X", "W", "R", "", "lens"], initializers={"lens": np.full(B, T, np.int32)}),
     r"sequence_lens is stored in the model \(lens\)"),
    (dict(attributes={"activations": ["Sigmoid", "Elu"]}),
     "activation Elu is not supported"),
    (dict(attributes={"activations": ["Sigmoid", "Tanh"], "activation_alpha": [0.5]}),
     "activation_alpha/activation_beta: more values than the activations"),
    (dict(attributes={"activation_alpha": [0.5]}),
     "activation_alpha/activation_beta given without activations"),
    (dict(attributes={"activations": ["Sigmoid"]}), r"activations: expected 2 names"),
    (dict(attributes={"direction": "sideways"}),
     "direction: expected 'forward', 'reverse' or 'bidirectional', got 'sideways'"),
    (dict(node_inputs=["X", "W", "Rx"], inputs=("X", "Rx")), r"R \(Rx\) must be an initializer"),
    (dict(extra=[helper.make_node("Relu", ["Y"], ["Z"], name="relu")], outputs=("Z", "Y_h")),
     "expected a Transpose node, found Relu node 'relu'"),
    (dict(extra=[helper.make_node("Relu", ["Y_h"], ["Z"], name="relu")], outputs=("Y", "Z")),
     "expected a Concat node, found Relu node 'relu'"),
])
def test_what_the_importer_does_not_apply_is_refused_by_name(rng, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        interop.from_onnx_model(gru_model(tmp_path, rng, **change))


def test_hidden_size_must_match_the_weights(rng, tmp_path):
    path = gru_model(tmp_path, rng)
    model = onnx.load(path)
    next(a for a in model.graph.node[0].attribute if a.name == "hidden_size").i = H + 1
    onnx.save(model, path)
    with pytest.raises(ValueError, match=rf"hidden_size = {H + 1} does not match R's"):
        interop.from_onnx_model(path)


@pytest.mark.parametrize("reset_after", [True, False])
def test_eigengru_torch_exports_import_back(tmp_path, reset_after):
    """torch.onnx.export of eigengru.torch.GRU (its own GRU nodes, both formulations), read
    back by from_onnx_model: the module's weights and ONNX Runtime's outputs."""
    import eigengru.torch as egt

    torch.manual_seed(5)
    module = egt.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True,
                     reset_after=reset_after).eval()
    x = torch.randn(B, T, I)
    path = tmp_path / "eigengru_torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), path, dynamo=True)
    gru = interop.from_onnx_model(path)
    assert gru.config() == {**gru.config(), "num_layers": 2, "bidirectional": True,
                            "batch_first": True, "reset_after": reset_after}
    for name, p in module.state_dict().items():
        np.testing.assert_array_equal(getattr(gru, name), p.numpy(), err_msg=name)
    want_out, want_h_n = run_onnx(path, [x.numpy()])
    out, h_n = gru(x.numpy())
    assert_close(out, want_out, np.float32, "out against ONNX Runtime")
    assert_close(h_n, want_h_n, np.float32, "h_n against ONNX Runtime")


# -- activations and clip -------------------------------------------------------------------------
FUNCTIONS = [  # activations per direction, alpha, beta, clip
    (["HardSigmoid", "Relu"], [0.3], [0.4], 1.2),
    (["Sigmoid", "Tanh"], None, None, 0.7),
    (["Relu", "HardSigmoid"], [0.25], [0.55], 2.0),
    (["HardSigmoid", "Tanh"], None, None, None),  # ONNX's defaults, alpha 0.2 and beta 0.5
]


@pytest.mark.parametrize("activations, alpha, beta, clip", FUNCTIONS)
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_activations_and_clip_compute_what_onnx_runtime_does(rng, tmp_path, activations, alpha,
                                                             beta, clip, direction,
                                                             linear_before_reset):
    D = 2 if direction == "bidirectional" else 1
    attributes = {"activations": activations * D, "direction": direction,
                  "linear_before_reset": linear_before_reset}
    if alpha:
        attributes |= {"activation_alpha": alpha * D, "activation_beta": beta * D}
    if clip is not None:
        attributes["clip"] = clip
    W = rng.uniform(-1, 1, (D, 3 * H, I)).astype(np.float32)
    R = rng.uniform(-1, 1, (D, 3 * H, H)).astype(np.float32)
    bias = rng.uniform(-1, 1, (D, 6 * H)).astype(np.float32)
    node = helper.make_node("GRU", ["X", "W", "R", "B"], ["Y", "Y_h"], name="gru", hidden_size=H,
                            **attributes)
    graph = helper.make_graph(
        [node], "test", [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [T, B, I])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [T, D, B, H]),
         helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, [D, B, H])],
        [numpy_helper.from_array(v, k) for k, v in {"W": W, "R": R, "B": bias}.items()])
    path = tmp_path / "functions.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, y_h = run_onnx(path, [x])
    from_model = interop.from_onnx_model(path)
    # the model stores its attributes as float32
    stored = {k: [float(np.float32(a)) for a in v] if k.startswith("activation_") else
              float(np.float32(v)) if k == "clip" else v for k, v in attributes.items()}
    from_tensors = interop.from_onnx(W, R, bias, **stored)
    assert from_model.config() == from_tensors.config()
    assert from_model.functions != ("sigmoid", "tanh", None)
    out, h_n = from_model(x)
    assert_close(out, y.transpose(0, 2, 1, 3).reshape(T, B, D * H), np.float32, "Y")
    assert_close(h_n, y_h, np.float32, "Y_h")
    # and written back: ONNX Runtime runs what to_onnx writes to the same outputs
    interop.to_onnx(from_model, tmp_path / "written.onnx")
    y2, y_h2 = run_onnx(tmp_path / "written.onnx", [x])
    assert_close(y2, y, np.float32, "Y of the written model")
    assert_close(y_h2, y_h, np.float32, "Y_h of the written model")


def test_directions_with_different_functions_are_refused(rng):
    W = rng.uniform(-1, 1, (2, 3 * H, I))
    R = rng.uniform(-1, 1, (2, 3 * H, H))
    with pytest.raises(ValueError, match="the two directions' functions differ"):
        interop.from_onnx(W, R, direction="bidirectional",
                          activations=["Sigmoid", "Tanh", "HardSigmoid", "Tanh"])
