"""Weights from and to PyTorch, Keras, ONNX, and the seed formulation (concatenated weights).

Gate orders differ: eigengru and PyTorch stack (r, z, n); Keras and ONNX stack (z, r, h).
Nothing here imports torch or onnx until a function that needs it is called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import model_dtype, shape_text
from .gru import GRU

_ONNX_OPSET = 14


def _as_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a PyTorch tensor (detached, moved to the CPU) or anything
    with ``__array__``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _zr_to_rz(blocks: np.ndarray, hidden: int, axis: int = 0) -> np.ndarray:
    """Reorder gate blocks of size ``hidden`` along ``axis`` from (z, r, h) to (r, z, n)."""
    z, r, h = np.split(blocks, [hidden, 2 * hidden], axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _rz_to_zr(blocks: np.ndarray, hidden: int, axis: int = 0) -> np.ndarray:
    """Reorder gate blocks from (r, z, n) to (z, r, h)."""
    return _zr_to_rz(blocks, hidden, axis)  # swapping the first two blocks is its own inverse


# -- PyTorch ---------------------------------------------------------------------------------
def from_torch(module_or_state_dict: Any, *, dtype: Any = None,
               batch_first: bool | None = None) -> GRU:
    """An eigengru GRU with the weights of a ``torch.nn.GRU`` or of its ``state_dict()``.

    From a module, every constructor argument is taken over; from a state_dict, the sizes, layer
    count, directions and biases are read off the entries, and ``batch_first`` defaults to False.
    ``dtype`` defaults to the weights' own (float32 or float64).
    """
    module = module_or_state_dict
    if hasattr(module, "state_dict") and hasattr(module, "hidden_size"):
        state = {k: _as_numpy(v) for k, v in module.state_dict().items()}
        config = dict(num_layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, dropout=float(module.dropout),
                      bidirectional=module.bidirectional)
    elif isinstance(module, Mapping):
        state = {k: _as_numpy(v) for k, v in module.items()}
        if "weight_ih_l0" not in state or "weight_hh_l0" not in state:
            raise ValueError("from_torch: a GRU state_dict has weight_ih_l0 and weight_hh_l0")
        layers = 0
        while f"weight_ih_l{layers}" in state:
            layers += 1
        config = dict(num_layers=layers, bias="bias_ih_l0" in state, batch_first=False,
                      bidirectional="weight_ih_l0_reverse" in state)
    else:
        raise TypeError("from_torch: expected a torch.nn.GRU or its state_dict, "
                        f"got {type(module).__name__}")
    if batch_first is not None:
        config["batch_first"] = batch_first
    hidden_size = state["weight_hh_l0"].shape[1]
    input_size = state["weight_ih_l0"].shape[1]
    gru = GRU(input_size, hidden_size, **config, reset_after=True,
              dtype=dtype if dtype is not None else state["weight_hh_l0"].dtype)
    gru.load_state_dict(state)
    return gru


def to_torch_state_dict(gru: GRU) -> dict[str, Any]:
    """The GRU's parameters as a state_dict of PyTorch tensors (copies) for ``torch.nn.GRU``.

    Only reset_after=True models compute what ``torch.nn.GRU`` computes.
    """
    if not gru.reset_after:
        raise ValueError("to_torch_state_dict: torch.nn.GRU computes reset_after=True only; "
                         "this model has reset_after=False")
    import torch

    return {name: torch.from_numpy(array) for name, array in gru.state_dict().items()}


# -- Keras -----------------------------------------------------------------------------------
def from_keras(kernel: Any, recurrent_kernel: Any, bias: Any = None, *, reset_after: bool = True,
               dtype: Any = np.float32) -> GRU:
    """A one-layer GRU from a Keras GRU layer's weights (``layer.get_weights()``).

    kernel ``(I, 3H)`` and recurrent_kernel ``(H, 3H)`` in Keras's (z, r, h) order; bias
    ``(2, 3H)`` (input and recurrent biases) with ``reset_after=True``, ``(3H,)`` (input bias
    only) with ``reset_after=False``, or None for ``use_bias=False``. Keras's default activations
    (tanh, and sigmoid for the gates) are assumed.
    """
    kernel, recurrent = _as_numpy(kernel), _as_numpy(recurrent_kernel)
    if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0]:
        raise ValueError("from_keras: recurrent_kernel: expected shape (H, 3H), got "
                         f"{shape_text(recurrent.shape)}")
    hidden = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * hidden:
        raise ValueError(f"from_keras: kernel: expected shape (input_size, {3 * hidden}), got "
                         f"{shape_text(kernel.shape)}")
    gru = GRU(kernel.shape[0], hidden, bias=bias is not None, reset_after=reset_after,
              dtype=dtype)
    state = {"weight_ih_l0": _zr_to_rz(kernel.T, hidden),
             "weight_hh_l0": _zr_to_rz(recurrent.T, hidden)}
    if bias is not None:
        bias = _as_numpy(bias)
        expected = (2, 3 * hidden) if reset_after else (3 * hidden,)
        if bias.shape != expected:
            raise ValueError(f"from_keras: bias: expected shape {shape_text(expected)} with "
                             f"reset_after={reset_after}, got {shape_text(bias.shape)}")
        input_bias, recurrent_bias = ((bias[0], bias[1]) if reset_after
                                      else (bias, np.zeros_like(bias)))
        state["bias_ih_l0"] = _zr_to_rz(input_bias, hidden)
        state["bias_hh_l0"] = _zr_to_rz(recurrent_bias, hidden)
    gru.load_state_dict(state)
    return gru


# -- ONNX ------------------------------------------------------------------------------------
def from_onnx(W: Any, R: Any, B: Any = None, *, linear_before_reset: int = 0,
              direction: str = "forward", dtype: Any = None) -> GRU:
    """A one-layer GRU from the tensors of an ONNX GRU operator.

    W ``[D, 3H, I]``, R ``[D, 3H, H]`` and B ``[D, 6H]`` (input then recurrence biases), each in
    ONNX's (z, r, h) order; ``linear_before_reset`` 0 (ONNX's default) is ``reset_after=False``,
    1 is ``reset_after=True``. ``direction`` is "forward" or "bidirectional"; a "reverse"-only
    GRU has no eigengru equivalent (run a forward one on the reversed sequence).
    """
    W, R = _as_numpy(W), _as_numpy(R)
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"from_onnx: direction: expected 'forward' or 'bidirectional', got "
                         f"{direction!r} (a reverse-only GRU is a forward one on the reversed "
                         "input)")
    directions = 2 if direction == "bidirectional" else 1
    if R.ndim != 3 or R.shape[0] != directions or R.shape[1] != 3 * R.shape[2]:
        raise ValueError(f"from_onnx: R: expected shape [{directions}, 3H, H], got "
                         f"{shape_text(R.shape)}")
    hidden = R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (directions, 3 * hidden):
        raise ValueError(f"from_onnx: W: expected shape [{directions}, {3 * hidden}, input_size], "
                         f"got {shape_text(W.shape)}")
    if B is not None:
        B = _as_numpy(B)
        if B.shape != (directions, 6 * hidden):
            raise ValueError(f"from_onnx: B: expected shape [{directions}, {6 * hidden}], got "
                             f"{shape_text(B.shape)}")
    gru = GRU(W.shape[2], hidden, bias=B is not None, bidirectional=directions == 2,
              reset_after=bool(linear_before_reset),
              dtype=dtype if dtype is not None else W.dtype)
    state = {}
    for d, suffix in enumerate(("", "_reverse")[:directions]):
        state[f"weight_ih_l0{suffix}"] = _zr_to_rz(W[d], hidden)
        state[f"weight_hh_l0{suffix}"] = _zr_to_rz(R[d], hidden)
        if B is not None:
            state[f"bias_ih_l0{suffix}"] = _zr_to_rz(B[d, : 3 * hidden], hidden)
            state[f"bias_hh_l0{suffix}"] = _zr_to_rz(B[d, 3 * hidden :], hidden)
    gru.load_state_dict(state)
    return gru


def _onnx_tensors(gru: GRU) -> dict[str, np.ndarray]:
    """W, R and (with biases) B of a one-layer GRU, in ONNX's layout."""
    hidden = gru.hidden_size
    suffixes = ("", "_reverse")[: gru.directions]
    tensors = {
        "W": np.stack([_rz_to_zr(getattr(gru, f"weight_ih_l0{s}"), hidden) for s in suffixes]),
        "R": np.stack([_rz_to_zr(getattr(gru, f"weight_hh_l0{s}"), hidden) for s in suffixes]),
    }
    if gru.bias:
        tensors["B"] = np.stack([
            np.concatenate([_rz_to_zr(getattr(gru, f"bias_ih_l0{s}"), hidden),
                            _rz_to_zr(getattr(gru, f"bias_hh_l0{s}"), hidden)])
            for s in suffixes])
    return tensors


def to_onnx(gru: GRU, path: str | os.PathLike, *, initial_state: bool = False,
            lengths: bool = False) -> None:
    """Write an ONNX model (opset 14) with one GRU node computing this one-layer GRU.

    Graph inputs: ``X`` ``[T, B, I]``, plus ``sequence_lens`` ``[B]`` (int32) when ``lengths`` and
    ``initial_h`` ``[D, B, H]`` when ``initial_state``. Outputs: ``Y`` ``[T, D, B, H]`` and
    ``Y_h`` ``[D, B, H]``, as the ONNX operator defines them. The weights are initializers.
    Needs the ``onnx`` package.
    """
    if gru.num_layers != 1:
        raise ValueError(f"to_onnx: the ONNX GRU operator is one layer; this model has "
                         f"{gru.num_layers}")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    element = TensorProto.FLOAT if gru.dtype == np.float32 else TensorProto.DOUBLE
    directions, hidden = gru.directions, gru.hidden_size
    tensors = _onnx_tensors(gru)
    inputs = [helper.make_tensor_value_info("X", element, ["T", "batch", gru.input_size])]
    node_inputs = ["X", "W", "R", "B" if gru.bias else "", "", ""]
    if lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["batch"]))
        node_inputs[4] = "sequence_lens"
    if initial_state:
        inputs.append(helper.make_tensor_value_info("initial_h", element,
                                                    [directions, "batch", hidden]))
        node_inputs[5] = "initial_h"
    while node_inputs[-1] == "":
        node_inputs.pop()
    node = helper.make_node(
        "GRU", node_inputs, ["Y", "Y_h"], hidden_size=hidden,
        direction="bidirectional" if directions == 2 else "forward",
        linear_before_reset=int(gru.reset_after))
    outputs = [helper.make_tensor_value_info("Y", element, ["T", directions, "batch", hidden]),
               helper.make_tensor_value_info("Y_h", element, [directions, "batch", hidden])]
    initializers = [numpy_helper.from_array(array, name) for name, array in tensors.items()]
    graph = helper.make_graph([node], "eigengru", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _ONNX_OPSET)],
                              producer_name="eigengru")
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))


def from_onnx_model(path: str | os.PathLike, *, dtype: Any = None) -> GRU:
    """A GRU from an ONNX model file whose single GRU node has its W, R (and B) as initializers.

    The node must use the default activations (Sigmoid, Tanh) and no clip; ``layout=1`` gives a
    ``batch_first`` model. Needs the ``onnx`` package.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.fspath(path))
    nodes = [node for node in model.graph.node if node.op_type == "GRU"]
    if len(nodes) != 1:
        raise ValueError(f"from_onnx_model: expected one GRU node, found {len(nodes)}")
    node = nodes[0]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    activations = [a.decode() if isinstance(a, bytes) else a
                   for a in attributes.get("activations", [])]
    if activations and [a.lower() for a in activations] not in (
            ["sigmoid", "tanh"], ["sigmoid", "tanh", "sigmoid", "tanh"]):
        raise ValueError(f"from_onnx_model: activations {activations} are not supported "
                         "(only Sigmoid and Tanh)")
    if "clip" in attributes:
        raise ValueError("from_onnx_model: the clip attribute is not supported")
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inputs = list(node.input) + [""] * 4  # X, W, R, B, sequence_lens, initial_h
    w_name, r_name, b_name = inputs[1:4]
    missing = [name or label for name, label in ((w_name, "W"), (r_name, "R"))
               if name not in initializers]
    if missing:
        raise ValueError(f"from_onnx_model: {', '.join(missing)} must be initializers")
    if b_name and b_name not in initializers:
        raise ValueError(f"from_onnx_model: {b_name} (B) must be an initializer")
    bias = initializers[b_name] if b_name else None
    direction = attributes.get("direction", "forward")
    if isinstance(direction, bytes):
        direction = direction.decode()
    gru = from_onnx(initializers[w_name], initializers[r_name], bias,
                    linear_before_reset=attributes.get("linear_before_reset", 0),
                    direction=direction, dtype=dtype)
    if attributes.get("layout", 0) == 1:
        return _with_batch_first(gru)
    return gru


def _with_batch_first(gru: GRU) -> GRU:
    twin = GRU(**(gru.config() | {"batch_first": True}))
    twin.load_state_dict(gru.state_dict())
    return twin


# -- the seed formulation: concatenated weights, no biases ----------------------------------
def from_seed(W_z: Any, W_r: Any, W: Any, *, dtype: Any = np.float32) -> GRU:
    """The seed formulation of the GRU: unbiased ``H x (H + I)`` matrices acting on ``[h, x]``,
    ``z = σ(W_z [h, x])``, ``r = σ(W_r [h, x])``, ``h~ = tanh(W [r * h, x])`` and
    ``h' = (1 - z) * h + z * h~``.

    That is a ``reset_after=False`` GRU without biases whose update gate is flipped
    (z' = 1 - z = σ(-W_z [h, x])), which is what this returns.
    """
    W_z, W_r, W = (_as_numpy(m) for m in (W_z, W_r, W))
    if W_z.ndim != 2 or W_z.shape[1] <= W_z.shape[0]:
        raise ValueError(f"from_seed: W_z: expected shape (H, H + input_size), got "
                         f"{shape_text(W_z.shape)}")
    hidden, width = W_z.shape
    for name, m in (("W_r", W_r), ("W", W)):
        if m.shape != W_z.shape:
            raise ValueError(f"from_seed: {name}: expected shape {shape_text(W_z.shape)} like W_z, "
                             f"got {shape_text(m.shape)}")
    gru = GRU(width - hidden, hidden, bias=False, reset_after=False, dtype=model_dtype(dtype))
    h, x = slice(0, hidden), slice(hidden, width)
    gru.load_state_dict({
        "weight_ih_l0": np.concatenate([W_r[:, x], -W_z[:, x], W[:, x]]),
        "weight_hh_l0": np.concatenate([W_r[:, h], -W_z[:, h], W[:, h]]),
    })
    return gru
