"""``eigengru.torch.quantize``: a ``torch.nn.GRU`` (or ``eigengru.torch.GRU``) as an inference
module with bfloat16 or int8 weights, on ``eigengru.QuantizedGRU``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import interop
from ._checks import shape_text
from ._torch_checks import functorch_active, has_tangents, transforms_active
from .quantized import QuantizedGRU as _QuantizedGRU

_NAME = "eigengru.torch.QuantizedGRU"


class QuantizedGRU(nn.Module):
    """``torch.nn.GRU``'s inference ``forward(input, hx=None)`` (tensors and
    ``PackedSequence``s, float32) with the weights quantized: see ``eigengru.QuantizedGRU`` for
    the arithmetic. It has no parameters and no backward: an input or state that requires a
    gradient is refused. ``torch.save`` and ``copy.deepcopy`` keep it."""

    def __init__(self, quantized: _QuantizedGRU) -> None:
        super().__init__()
        if not isinstance(quantized, _QuantizedGRU):
            raise TypeError(f"{_NAME}: expected an eigengru.QuantizedGRU, got "
                            f"{type(quantized).__name__}; use eigengru.torch.quantize(module, "
                            "precision)")
        self.quantized = quantized
        for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "bidirectional", "precision"):
            setattr(self, name, getattr(quantized, name))

    def extra_repr(self) -> str:
        return repr(self.quantized)

    def forward(self, input: Any, hx: torch.Tensor | None = None):
        for name, tensor in (("input", input.data if isinstance(input, PackedSequence) else input),
                             ("hx", hx)):
            if tensor is None:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
            if tensor.requires_grad and torch.is_grad_enabled():
                raise RuntimeError(f"{_NAME}: inference only, there is no backward ({name} "
                                   "requires a gradient); train the float model and quantize "
                                   "it again")
            if tensor.dtype != torch.float32 or tensor.device.type != "cpu":
                raise TypeError(f"{name}: expected a CPU float32 tensor, got {tensor.dtype} on "
                                f"{tensor.device}")
        if transforms_active() and (functorch_active() or has_tangents(
                [input.data if isinstance(input, PackedSequence) else input, hx])):
            raise RuntimeError(f"{_NAME}: inference only, on plain tensors; torch.func's "
                               "transforms (vmap, grad, jvp, ...) and forward-mode AD are not "
                               "supported. Put a mapped dimension into the batch instead")
        h0 = None if hx is None else hx.detach().numpy()
        if not isinstance(input, PackedSequence):
            out, h_n = self.quantized(input.detach().numpy(), h0)
            return torch.from_numpy(out), torch.from_numpy(h_n)
        from .torch import _PackedLayout

        if input.data.dim() != 2 or input.data.shape[-1] != self.input_size:
            raise ValueError(f"input: expected a PackedSequence of (steps, batch, input_size) "
                             f"with input_size = {self.input_size}, got data of shape "
                             f"{shape_text(tuple(input.data.shape))}")
        layout = _PackedLayout(input)
        x = layout.pad(np.ascontiguousarray(input.data.numpy()))
        if self.batch_first:  # the padded batch is time-major; the model takes it as laid out
            x = x.transpose(1, 0, 2)
        out, h_n = self.quantized(x, h0, lengths=layout.lengths)
        if self.batch_first:
            out = out.transpose(1, 0, 2)
        packed = layout.pack(np.ascontiguousarray(out))
        return PackedSequence(torch.from_numpy(packed), input.batch_sizes, input.sorted_indices,
                              input.unsorted_indices), torch.from_numpy(h_n)


def quantize(module: nn.Module, precision: str) -> QuantizedGRU:
    """An inference copy of a ``torch.nn.GRU`` or ``eigengru.torch.GRU`` with its weights in
    ``"bfloat16"`` or ``"int8"``; later changes to ``module`` do not reach it."""
    if not (isinstance(module, nn.Module) and getattr(module, "mode", None) == "GRU"):
        raise TypeError(f"quantize: expected a torch.nn.GRU or eigengru.torch.GRU, got "
                        f"{type(module).__name__}")
    return QuantizedGRU(interop.from_torch(module, dtype=np.float32).quantize(precision))
