"""Weights from and to PyTorch, Keras, ONNX, and the seed formulation (concatenated weights).

Gate orders differ: eigengru and PyTorch stack (r, z, n); Keras and ONNX stack (z, r, h).
Nothing here imports torch or onnx until a function that needs it is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import nonlinearities
from ._checks import shape_text
from ._imported_arrays import as_numpy as _as_numpy, dtype_of as _dtype_of
from ._keras import from_keras
from ._onnx import from_onnx, to_onnx
from ._onnx_reader import from_onnx_model
from .gru import GRU

__all__ = ["from_keras", "from_onnx", "from_onnx_model", "from_seed", "from_torch", "to_onnx",
           "to_torch_state_dict"]


# -- PyTorch ---------------------------------------------------------------------------------
def from_torch(module_or_state_dict: Any, *, dtype: Any = None,
               batch_first: bool | None = None) -> GRU:
    """An eigengru GRU with the weights of a ``torch.nn.GRU`` or of its ``state_dict()``.

    From a module (``torch.nn.GRU`` or ``eigengru.torch.GRU``), every constructor argument is
    taken over; from a state_dict, the sizes, layer
    count, directions and biases are read off the entries, and ``batch_first`` defaults to False.
    ``dtype`` defaults to the weights' own (float64 stays float64, anything else is float32).
    """
    module = module_or_state_dict
    if hasattr(module, "state_dict") and hasattr(module, "hidden_size"):
        state = {k: _as_numpy(v) for k, v in module.state_dict().items()}
        # eigengru.torch.GRU has reset_after; torch.nn.GRU's formulation is reset_after=True
        config = dict(num_layers=module.num_layers, bias=module.bias,
                      batch_first=module.batch_first, dropout=float(module.dropout),
                      bidirectional=module.bidirectional,
                      reset_after=bool(getattr(module, "reset_after", True)))
    elif isinstance(module, Mapping):
        state = {k: _as_numpy(v) for k, v in module.items()}
        if "weight_ih_l0" not in state or "weight_hh_l0" not in state:
            raise ValueError("from_torch: a GRU state_dict has weight_ih_l0 and weight_hh_l0")
        layers = 0
        while f"weight_ih_l{layers}" in state:
            layers += 1
        config = dict(num_layers=layers, bias="bias_ih_l0" in state, batch_first=False,
                      bidirectional="weight_ih_l0_reverse" in state, reset_after=True)
    else:
        raise TypeError("from_torch: expected a torch.nn.GRU or its state_dict, "
                        f"got {type(module).__name__}")
    if batch_first is not None:
        config["batch_first"] = batch_first
    hidden_size = state["weight_hh_l0"].shape[1]
    input_size = state["weight_ih_l0"].shape[1]
    gru = GRU(input_size, hidden_size, **config,
              dtype=_dtype_of(dtype, state["weight_hh_l0"]))
    gru.load_state_dict(state)
    return gru


def to_torch_state_dict(gru: GRU) -> dict[str, Any]:
    """The GRU's parameters as a state_dict of PyTorch tensors (copies) for ``torch.nn.GRU``.

    Only reset_after=True models compute what ``torch.nn.GRU`` computes.
    """
    if not gru.reset_after:
        raise ValueError("to_torch_state_dict: torch.nn.GRU computes reset_after=True only; "
                         "this model has reset_after=False")
    if gru.reverse:
        raise ValueError("to_torch_state_dict: torch.nn.GRU has no reverse-only layers; this "
                         "model has reverse=True")
    if gru.functions != nonlinearities.STANDARD:
        raise ValueError("to_torch_state_dict: torch.nn.GRU computes sigmoid and tanh without "
                         f"clip; this model has gate_activation={gru.gate_activation!r}, "
                         f"candidate_activation={gru.candidate_activation!r}, clip={gru.clip!r}")
    import torch

    return {name: torch.from_numpy(array) for name, array in gru.state_dict().items()}


# -- the seed formulation: concatenated weights, no biases ----------------------------------
def from_seed(W_z: Any, W_r: Any, W: Any, *, dtype: Any = None) -> GRU:
    """The seed formulation of the GRU: unbiased ``H x (H + I)`` matrices acting on ``[h, x]``,
    ``z = σ(W_z [h, x])``, ``r = σ(W_r [h, x])``, ``h~ = tanh(W [r * h, x])`` and
    ``h' = (1 - z) * h + z * h~``.

    That is a ``reset_after=False`` GRU without biases whose update gate is flipped
    (z' = 1 - z = σ(-W_z [h, x])), which is what this returns. ``dtype`` defaults to the
    weights' own.
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
    gru = GRU(width - hidden, hidden, bias=False, reset_after=False, dtype=_dtype_of(dtype, W_z))
    h, x = slice(0, hidden), slice(hidden, width)
    gru.load_state_dict({
        "weight_ih_l0": np.concatenate([W_r[:, x], -W_z[:, x], W[:, x]]),
        "weight_hh_l0": np.concatenate([W_r[:, h], -W_z[:, h], W[:, h]]),
    })
    return gru
