"""Reading an ONNX model into a GRU stack (``eigengru.interop.from_onnx_model``).

A model is read node by node, and every node, attribute, input and output must be one that the
imported GRU applies: anything else is refused by name, never dropped. What is read is the
graph ``torch.onnx.export`` writes for ``torch.nn.GRU`` (one GRU node per layer, with the
Transpose, Reshape, Squeeze, Slice and Concat nodes between them) and what ``to_onnx`` writes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._checks import shape_text
from ._imported_arrays import dtype_of
from ._onnx import check_tensors, directions_of, functions_of, layer_state
from .gru import GRU

_WHERE = "from_onnx_model"
_GRU_ATTRIBUTES = {"hidden_size", "direction", "linear_before_reset", "layout", "activations",
                   "activation_alpha", "activation_beta", "clip"}


def _refuse(what: str) -> None:
    raise ValueError(f"{_WHERE}: {what}")


class _GraphReader:
    """The nodes of a graph, consumed one by one while a GRU stack is read from it; what is
    left over at the end is refused."""

    def __init__(self, graph: Any) -> None:
        from onnx import helper, numpy_helper

        self.get = helper.get_attribute_value
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        self.used: set[int] = set()
        for node in self.nodes:
            if node.op_type == "Constant" and len(node.attribute) == 1 \
                    and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
                self.used.add(id(node))
        self.inputs = [i.name for i in graph.input if i.name not in self.constants]
        self.outputs = [o.name for o in graph.output]

    def attributes(self, node: Any) -> dict[str, Any]:
        values = {a.name: self.get(a) for a in node.attribute}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}

    def consumers(self, name: str) -> list[Any]:
        return [n for n in self.nodes if name in n.input and id(n) not in self.used]

    def next_node(self, name: str) -> Any:
        """The one node that reads `name`, or None when the graph's output is `name`."""
        readers = self.consumers(name)
        if name in self.outputs and not readers:
            return None
        if len(readers) != 1 or name in self.outputs:
            _refuse(f"{name} is read by {len(readers)} nodes"
                    + (" and is a graph output" if name in self.outputs else "")
                    + "; a GRU stack passes each tensor on to one node")
        return readers[0]

    def take(self, node: Any, op_type: str, *inputs: str) -> dict[str, Any]:
        """Consumes `node`, which must be of `op_type`; returns its attributes and the values of
        its constant inputs after the first, named `inputs`."""
        if node is None or node.op_type != op_type:
            found = "the graph's output" if node is None else f"{node.op_type} node {node.name!r}"
            _refuse(f"expected a {op_type} node, found {found}")
        values = self.attributes(node)
        for name, position in zip(inputs, range(1, len(node.input))):
            if node.input[position]:
                values[name] = self.constant(node.input[position], f"{op_type} {name}").tolist()
        self.used.add(id(node))
        return values

    def constant(self, name: str, what: str) -> np.ndarray:
        if name not in self.constants:
            _refuse(f"{what} ({name}) must be an initializer or a Constant")
        return self.constants[name]


def _layer(reader: _GraphReader, node: Any, layer: int) -> dict[str, Any]:
    """One GRU node's tensors and settings; refuses what eigengru would not apply."""
    attributes = reader.attributes(node)
    where = f"GRU node {node.name!r}"
    for name in sorted(set(attributes) - _GRU_ATTRIBUTES):
        _refuse(f"{where}: attribute {name} is not part of the ONNX GRU operator")
    inputs = list(node.input) + [""] * (6 - len(node.input))
    W = reader.constant(inputs[1], f"{where}: W")
    R = reader.constant(inputs[2], f"{where}: R")
    B = reader.constant(inputs[3], f"{where}: B") if inputs[3] else None
    directions, reverse = directions_of(attributes.get("direction", "forward"), where)
    try:
        functions = functions_of(attributes.get("activations"), attributes.get("activation_alpha"),
                                 attributes.get("activation_beta"), attributes.get("clip"),
                                 directions, where)
    except ValueError as error:
        _refuse(str(error))
    hidden = check_tensors(W, R, B, directions, where)
    if attributes.get("hidden_size", hidden) != hidden:
        _refuse(f"{where}: hidden_size = {attributes['hidden_size']} does not match R's "
                f"{shape_text(R.shape)}")
    lengths = inputs[4]
    if lengths in reader.constants:
        _refuse(f"{where}: sequence_lens is stored in the model ({lengths}); eigengru takes "
                "lengths with each call (lengths=), so remove it from the model or make it a "
                "graph input")
    if lengths and lengths not in reader.inputs:
        _refuse(f"{where}: sequence_lens ({lengths}) must be a graph input")
    _initial_state(reader, inputs[5], layer, directions, where)
    if len(node.output) > 2 and any(node.output[2:]):
        _refuse(f"{where}: outputs beyond Y and Y_h are not part of the GRU operator")
    return {"W": W, "R": R, "B": B, "directions": directions, "reverse": reverse, "hidden": hidden,
            "reset_after": bool(attributes.get("linear_before_reset", 0)),
            "layout": attributes.get("layout", 0), "lengths": lengths, "node": node,
            "functions": functions}


def _initial_state(reader: _GraphReader, name: str, layer: int, directions: int,
                   where: str) -> None:
    """Checks a GRU node's initial_h: none, zeros stored in the model, a graph input (one
    layer), or the layer's slice [layer * D, (layer + 1) * D) of a graph input."""
    if not name:
        return
    if name in reader.constants:
        if np.any(reader.constants[name]):
            _refuse(f"{where}: initial_h is stored in the model ({name}) and is not zero; "
                    "eigengru takes the initial state with each call (h0=)")
        return  # zeros: what no initial state means
    if name in reader.inputs:
        if layer != 0:
            _refuse(f"{where}: initial_h ({name}) must be layer {layer}'s slice of the graph's "
                    "initial state")
        return
    producer = next((n for n in reader.nodes if name in n.output), None)
    if producer is None or producer.op_type != "Slice" or producer.input[0] not in reader.inputs:
        _refuse(f"{where}: initial_h ({name}) must be a graph input or a Slice of one")
    values = reader.take(producer, "Slice", "starts", "ends", "axes", "steps")
    if (values.get("starts"), values.get("ends"), values.get("axes", [0]),
            values.get("steps", [1])) != ([layer * directions], [(layer + 1) * directions], [0],
                                          [1]):
        _refuse(f"Slice node {producer.name!r} does not take layer {layer}'s initial state "
                f"(rows {layer * directions} to {(layer + 1) * directions} of axis 0)")


def _layer_output(reader: _GraphReader, y: str, directions: int, hidden: int) -> str:
    """The nodes after a layer's Y [T, D, B, H] that make [T, B, D*H]: Transpose(0, 2, 1, 3)
    then Reshape to (T, B, -1), or Squeeze(axis 1) for one direction. Returns their output."""
    node = reader.next_node(y)
    if node is not None and node.op_type == "Squeeze" and directions == 1:
        values = reader.take(node, "Squeeze", "axes")
        if values.get("axes") != [1]:
            _refuse(f"Squeeze node {node.name!r}: axes = {values.get('axes')}, expected [1]")
        return node.output[0]
    values = reader.take(node, "Transpose")
    if values.get("perm") != [0, 2, 1, 3]:
        _refuse(f"Transpose node {node.name!r}: perm = {values.get('perm')}, expected "
                "[0, 2, 1, 3] (a GRU's Y to time, batch, direction)")
    reshape = reader.next_node(node.output[0])
    values = reader.take(reshape, "Reshape", "shape")
    shape = values.get("shape", [])
    if len(shape) != 3 or shape[2] not in (-1, directions * hidden) or min(shape[:2]) < 0:
        _refuse(f"Reshape node {reshape.name!r}: shape = {shape}, expected (T, B, D*H)")
    return reshape.output[0]


def from_onnx_model(path: str | os.PathLike, *, dtype: Any = None) -> GRU:
    """A GRU stack from an ONNX model file: what ``torch.onnx.export`` writes for a
    ``torch.nn.GRU`` (one GRU node per layer, the Transpose, Reshape, Squeeze, Slice and Concat
    nodes between them, batch-first or not) or what ``to_onnx`` writes.

    Every node, attribute and input is applied or refused by name: ``activations`` (with
    ``activation_alpha``, ``activation_beta``) and ``clip`` become the model's functions, and
    activations other than Sigmoid, Tanh, Relu and HardSigmoid, directions with different
    functions, a non-zero initial state or lengths stored in the model (pass them with each
    call instead) and any other node are refused. The weights must be
    initializers or Constants. ``layout=1`` (a single GRU node) gives a ``batch_first`` model,
    whose states are eigengru's ``(L*D, B, H)`` like every model's. ``dtype`` defaults to the
    weights' own. Needs the ``onnx`` package.
    """
    import onnx

    reader = _GraphReader(onnx.load(os.fspath(path)).graph)
    if not reader.inputs:
        _refuse("the graph has no input")
    current, batch_first = reader.inputs[0], False
    node = reader.next_node(current)
    if node is not None and node.op_type == "Transpose":
        if reader.take(node, "Transpose").get("perm") != [1, 0, 2]:
            _refuse(f"Transpose node {node.name!r} before the first GRU is not (1, 0, 2)")
        current, batch_first, node = node.output[0], True, reader.next_node(node.output[0])
    layers = []
    while True:
        if node is None or node.op_type != "GRU" or node.input[0] != current:
            found = "the graph's output" if node is None else f"{node.op_type} {node.name!r}"
            _refuse(f"expected a GRU node reading {current}, found {found}")
        layers.append(_layer(reader, node, len(layers)))
        reader.used.add(id(node))
        if layers[-1]["layout"] == 1:
            if batch_first or len(layers) > 1:
                _refuse(f"GRU node {node.name!r}: layout=1 only for a model of one GRU node")
            batch_first = True
        y = node.output[0]
        if y in reader.outputs or not y:
            break  # the operator's own Y (or none): the last layer
        current = _layer_output(reader, y, layers[-1]["directions"], layers[-1]["hidden"])
        node = reader.next_node(current)
        if node is not None and node.op_type == "Transpose" and batch_first:
            if reader.take(node, "Transpose").get("perm") != [1, 0, 2] or \
                    node.output[0] not in reader.outputs:
                _refuse(f"Transpose node {node.name!r} after the last GRU must give the output "
                        "back in (batch, time) order")
            break
        if node is None:
            break
    _final_states(reader, [layer["node"].output[1] if len(layer["node"].output) > 1 else ""
                           for layer in layers])
    left = [n for n in reader.nodes if id(n) not in reader.used]
    if left:
        _refuse(f"{left[0].op_type} node {left[0].name!r} is not part of a GRU stack that "
                f"eigengru imports ({len(left)} node(s) left over)")
    return _stack(layers, batch_first, dtype)


def _final_states(reader: _GraphReader, states: list[str]) -> None:
    """The layers' Y_h: unused, a graph output (one layer), or concatenated along axis 0."""
    if not any(states):
        return
    if len(states) == 1 and states[0] in reader.outputs:
        return
    concat = reader.next_node(states[0])
    if reader.take(concat, "Concat").get("axis") != 0 or list(concat.input) != states:
        _refuse(f"Concat node {concat.name!r} must join the layers' Y_h along axis 0, in order")


def _stack(layers: list[dict[str, Any]], batch_first: bool, dtype: Any) -> GRU:
    first = layers[0]
    D, H = first["directions"], first["hidden"]
    for k, layer in enumerate(layers[1:], start=1):
        where = f"GRU node {layer['node'].name!r} (layer {k})"
        if (layer["directions"], layer["reverse"], layer["hidden"], layer["reset_after"],
                layer["functions"]) != (D, first["reverse"], H, first["reset_after"],
                                        first["functions"]):
            _refuse(f"{where}: direction, hidden_size, linear_before_reset, activations and clip "
                    "must be those of the first layer")
        if layer["W"].shape[2] != D * H:
            _refuse(f"{where}: W takes {layer['W'].shape[2]} inputs, expected {D * H}")
        if layer["lengths"] != first["lengths"]:
            _refuse(f"{where}: every layer must read the same sequence_lens")
    bias = any(layer["B"] is not None for layer in layers)
    gru = GRU(first["W"].shape[2], H, num_layers=len(layers), bias=bias, batch_first=batch_first,
              bidirectional=D == 2, reverse=first["reverse"], reset_after=first["reset_after"],
              dtype=dtype_of(dtype, first["W"]), **first["functions"])
    state = {}
    for k, layer in enumerate(layers):
        B = layer["B"]
        if bias and B is None:
            B = np.zeros((D, 6 * H), layer["W"].dtype)
        state |= layer_state(layer["W"], layer["R"], B, D, k)
    gru.load_state_dict(state)
    return gru
