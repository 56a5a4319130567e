"""ONNX: the GRU operator's tensors, and whole models written (``eigengru.interop``; models are
read in ``_onnx_reader.py``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import nonlinearities
from ._checks import shape_text
from ._imported_arrays import as_numpy, dtype_of, zr_to_rz
from .gru import GRU

_ONNX_OPSET = 14

#: ONNX's names of the activations eigengru computes, and eigengru's by ONNX's name in lower
#: case (ONNX Runtime matches names without regard to case).
_ONNX_NAMES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "hard_sigmoid": "HardSigmoid"}
_ACTIVATIONS = {onnx.lower(): name for name, onnx in _ONNX_NAMES.items()}


# -- the operator's tensors --------------------------------------------------------------------
def layer_state(W: Any, R: Any, B: Any, directions: int, layer: int) -> dict[str, np.ndarray]:
    """One layer's parameters, named as in ``state_dict()``, from ONNX's W, R and B (or None)."""
    W, R = as_numpy(W), as_numpy(R)
    hidden = R.shape[2]
    state = {}
    for d, suffix in enumerate(("", "_reverse")[:directions]):
        state[f"weight_ih_l{layer}{suffix}"] = zr_to_rz(W[d], hidden)
        state[f"weight_hh_l{layer}{suffix}"] = zr_to_rz(R[d], hidden)
        if B is not None:
            state[f"bias_ih_l{layer}{suffix}"] = zr_to_rz(B[d, : 3 * hidden], hidden)
            state[f"bias_hh_l{layer}{suffix}"] = zr_to_rz(B[d, 3 * hidden :], hidden)
    return state


def check_tensors(W: np.ndarray, R: np.ndarray, B: np.ndarray | None, directions: int,
                   where: str) -> int:
    """The hidden size of W, R and B, after checking their shapes against each other."""
    if R.ndim != 3 or R.shape[0] != directions or R.shape[1] != 3 * R.shape[2]:
        raise ValueError(f"{where}: R: expected shape [{directions}, 3H, H], got "
                         f"{shape_text(R.shape)}")
    hidden = R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (directions, 3 * hidden):
        raise ValueError(f"{where}: W: expected shape [{directions}, {3 * hidden}, input_size], "
                         f"got {shape_text(W.shape)}")
    if B is not None and B.shape != (directions, 6 * hidden):
        raise ValueError(f"{where}: B: expected shape [{directions}, {6 * hidden}], got "
                         f"{shape_text(B.shape)}")
    return hidden


def directions_of(direction: str, where: str) -> tuple[int, bool]:
    """The directions of an ONNX direction attribute, and whether the one direction is reverse."""
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{where}: direction: expected 'forward', 'reverse' or 'bidirectional', "
                         f"got {direction!r}")
    return (2 if direction == "bidirectional" else 1), direction == "reverse"


def functions_of(activations: Any, alpha: Any, beta: Any, clip: Any, directions: int,
                 where: str) -> dict[str, Any]:
    """GRU's gate_activation, candidate_activation and clip from the operator's attributes
    (None where absent). As in ONNX Runtime, alpha and beta values are taken in order by the
    functions that use them (HardSigmoid here), others keep their defaults."""
    functions = {}
    if activations is not None:
        names = [a.decode() if isinstance(a, bytes) else str(a) for a in activations]
        if len(names) != 2 * directions:
            raise ValueError(f"{where}: activations: expected {2 * directions} names (f and g "
                             f"for each direction), got {names}")
        for name in names:
            if name.lower() not in _ACTIVATIONS:
                raise ValueError(f"{where}: activation {name} is not supported (eigengru has "
                                 f"{', '.join(_ONNX_NAMES.values())})")
        alphas, betas = list(alpha or []), list(beta or [])
        made = []
        for name in names:
            kind = _ACTIVATIONS[name.lower()]
            if kind == "hard_sigmoid":
                kind = ("hard_sigmoid", alphas.pop(0) if alphas else 0.2,
                        betas.pop(0) if betas else 0.5)
            made.append(kind)
        if alphas or betas:
            raise ValueError(f"{where}: activation_alpha/activation_beta: more values than the "
                             f"activations {names} use")
        if directions == 2 and made[:2] != made[2:]:
            raise ValueError(f"{where}: activations {names}: the two directions' functions "
                             "differ; eigengru applies one pair to both")
        functions = {"gate_activation": made[0], "candidate_activation": made[1]}
    elif alpha or beta:
        raise ValueError(f"{where}: activation_alpha/activation_beta given without activations "
                         "(the default Sigmoid and Tanh take none)")
    if clip is not None:
        functions["clip"] = float(clip)
    return functions


def onnx_functions(gru: GRU) -> dict[str, Any]:
    """The operator's attributes for the GRU's functions (none for the standard ones)."""
    if gru.functions == nonlinearities.STANDARD:
        return {}
    names, alphas, betas = [], [], []
    for f in (gru.gate_activation, gru.candidate_activation) * gru.directions:
        kind = f if isinstance(f, str) else f[0]
        names.append(_ONNX_NAMES[kind])
        if kind == "hard_sigmoid":
            alphas.append(f[1])
            betas.append(f[2])
    attributes = {"activations": names}
    if alphas:
        attributes |= {"activation_alpha": alphas, "activation_beta": betas}
    if gru.clip is not None:
        attributes["clip"] = gru.clip
    return attributes


def from_onnx(W: Any, R: Any, B: Any = None, *, linear_before_reset: int = 0,
              direction: str = "forward", activations: Any = None, activation_alpha: Any = None,
              activation_beta: Any = None, clip: Any = None, dtype: Any = None) -> GRU:
    """A one-layer GRU from the tensors and attributes of an ONNX GRU operator.

    W ``[D, 3H, I]``, R ``[D, 3H, H]`` and B ``[D, 6H]`` (input then recurrence biases), each in
    ONNX's (z, r, h) order; ``linear_before_reset`` 0 (ONNX's default) is ``reset_after=False``,
    1 is ``reset_after=True``. ``direction`` is "forward", "reverse" (a ``reverse=True`` model)
    or "bidirectional". ``activations`` (f and g per direction: Sigmoid, Tanh, Relu or
    HardSigmoid; others refused by name), ``activation_alpha``, ``activation_beta`` and ``clip``
    are the operator's attributes. ``dtype`` defaults to the weights' own.
    """
    directions, reverse = directions_of(direction, "from_onnx")
    functions = functions_of(activations, activation_alpha, activation_beta, clip, directions,
                             "from_onnx")
    W, R = as_numpy(W), as_numpy(R)
    B = None if B is None else as_numpy(B)
    check_tensors(W, R, B, directions, "from_onnx")
    gru = GRU(W.shape[2], R.shape[2], bias=B is not None, bidirectional=directions == 2,
              reverse=reverse, reset_after=bool(linear_before_reset), dtype=dtype_of(dtype, W),
              **functions)
    gru.load_state_dict(layer_state(W, R, B, directions, 0))
    return gru


def _layer_tensors(gru: GRU, layer: int) -> dict[str, np.ndarray]:
    """W, R and (with biases) B of one layer, in ONNX's layout."""
    hidden = gru.hidden_size
    names = [f"l{layer}{s}" for s in ("", "_reverse")[: gru.directions]]
    tensors = {"W": np.stack([zr_to_rz(getattr(gru, f"weight_ih_{n}"), hidden) for n in names]),
               "R": np.stack([zr_to_rz(getattr(gru, f"weight_hh_{n}"), hidden) for n in names])}
    if gru.bias:
        tensors["B"] = np.stack([
            np.concatenate([zr_to_rz(getattr(gru, f"bias_ih_{n}"), hidden),
                            zr_to_rz(getattr(gru, f"bias_hh_{n}"), hidden)]) for n in names])
    return tensors


# -- writing a model ---------------------------------------------------------------------------
def to_onnx(gru: GRU, path: str | os.PathLike, *, initial_state: bool = False,
            lengths: bool = False) -> None:
    """Write an ONNX model (opset 14) computing this GRU: one GRU node per layer.

    Graph inputs: ``X`` (the model's input layout: ``[T, B, I]``, or ``[B, T, I]`` with
    ``batch_first``), plus ``sequence_lens`` ``[B]`` (int32) when ``lengths`` and ``initial_h``
    ``[L*D, B, H]`` when ``initial_state``. Outputs: ``Y`` and ``Y_h``. ``Y`` of a one-layer,
    time-major model is the operator's own, ``[T, D, B, H]``; otherwise it is the model's
    ``out``, ``[T, B, D*H]`` (``[B, T, D*H]`` with ``batch_first``). ``Y_h`` is ``[L*D, B, H]``.
    The weights are initializers. Needs the ``onnx`` package.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    element = TensorProto.FLOAT if gru.dtype == np.float32 else TensorProto.DOUBLE
    L, D, H = gru.num_layers, gru.directions, gru.hidden_size
    raw = L == 1 and not gru.batch_first  # the operator's own outputs
    nodes, initializers = [], []

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    x_dims = ["batch", "T", gru.input_size] if gru.batch_first else ["T", "batch", gru.input_size]
    inputs = [helper.make_tensor_value_info("X", element, x_dims)]
    layer_input = node("Transpose", ["X"], "X_time_major", perm=[1, 0, 2]) if gru.batch_first \
        else "X"
    if lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"]))
    if initial_state:
        inputs.append(helper.make_tensor_value_info("initial_h", element, [L * D, "batch", H]))
    final_states = []
    for layer in range(L):
        suffix = "" if L == 1 else f"_l{layer}"
        tensors = {k: constant(k + suffix, v) for k, v in _layer_tensors(gru, layer).items()}
        h0 = ""
        if initial_state:
            h0 = "initial_h" if L == 1 else node(
                "Slice", ["initial_h", constant(f"starts{suffix}", np.array([layer * D])),
                          constant(f"ends{suffix}", np.array([(layer + 1) * D])),
                          constant(f"axes{suffix}", np.array([0]))], f"initial_h{suffix}")
        node_inputs = [layer_input, tensors["W"], tensors["R"], tensors.get("B", ""),
                       "sequence_lens" if lengths else "", h0]
        while node_inputs[-1] == "":
            node_inputs.pop()
        y = "Y" if raw else f"Y_layer{layer}"
        final_states.append("Y_h" if L == 1 else f"Y_h{suffix}")
        nodes.append(helper.make_node(
            "GRU", node_inputs, [y, final_states[-1]], name=f"GRU{suffix}", hidden_size=H,
            direction="bidirectional" if D == 2 else "reverse" if gru.reverse else "forward",
            linear_before_reset=int(gru.reset_after), **onnx_functions(gru)))
        if not raw:  # [T, D, B, H] -> [T, B, D*H], the next layer's input
            y = node("Transpose", [y], f"Y{suffix}_transposed", perm=[0, 2, 1, 3])
            last = layer == L - 1 and not gru.batch_first
            layer_input = node("Reshape", [y, constant(f"shape{suffix}", np.array([0, 0, -1]))],
                               "Y" if last else f"out{suffix}")
    if not raw and gru.batch_first:
        node("Transpose", [layer_input], "Y", perm=[1, 0, 2])
    if L > 1:
        node("Concat", final_states, "Y_h", axis=0)
    y_dims = (["T", D, "batch", H] if raw else
              ["batch", "T", D * H] if gru.batch_first else ["T", "batch", D * H])
    outputs = [helper.make_tensor_value_info("Y", element, y_dims),
               helper.make_tensor_value_info("Y_h", element, [L * D, "batch", H])]
    graph = helper.make_graph(nodes, "eigengru", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _ONNX_OPSET)],
                              producer_name="eigengru")
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
