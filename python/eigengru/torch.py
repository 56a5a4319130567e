"""``eigengru.torch.GRU``: a drop-in for ``torch.nn.GRU`` on the CPU, computed by eigengru's core.

Same constructor (plus ``reset_after``), parameter names, shapes and initialisation, and the same
``forward(input, hx=None)`` for tensors and ``PackedSequence``. Gradients flow through one
``torch.autograd.Function`` that calls the C++ backward; contiguous CPU float32/float64 tensors
reach C++ without copies. Importing this module imports torch; ``import eigengru`` does not.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import _core, _torch_export
from ._checks import STACK_STATE, check_state, dropout_probability, input_is_unbatched, shape_text
from ._torch_autograd import free_cache, run_training_forward, stack_spec
from ._torch_cell import GRUCell, packing
from ._torch_checks import (
    array as _array,
    check_parameter_dtype,
    check_tensor,
    constructor_arguments,
    layer_tuples as _layer_tuples,
    needs_grad,
    transforms_active,
)
from ._torch_quantized import QuantizedGRU, quantize
from .parameters import layer_parameters

__all__ = ["GRU", "GRUCell", "QuantizedGRU", "quantize"]

_NAME = "eigengru.torch.GRU"

class _PackedLayout:
    """Where a PackedSequence's rows sit in the padded (T, B) grid, in the original batch order:
    packed row k is padded row rows[k] = t * B + b."""

    def __init__(self, sequence: PackedSequence) -> None:
        # tolist, not numpy: inside a torch.func transform no tensor gives a NumPy view
        sizes = np.array(sequence.batch_sizes.tolist(), dtype=np.int64)
        self.steps, self.batch = len(sizes), int(sizes[0]) if len(sizes) else 0
        order = (np.array(sequence.sorted_indices.tolist(), dtype=np.int64)
                 if sequence.sorted_indices is not None else np.arange(self.batch))
        step_of_row = np.repeat(np.arange(self.steps), sizes)
        rank_in_step = np.arange(len(step_of_row)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        self.rows = step_of_row * self.batch + order[rank_in_step]
        self.lengths = np.zeros(self.batch, dtype=np.int64)
        self.lengths[order] = (sizes[None, :] > np.arange(self.batch)[:, None]).sum(1)

    def pad(self, data: np.ndarray) -> np.ndarray:
        padded = np.zeros((self.steps * self.batch, data.shape[-1]), dtype=data.dtype)
        padded[self.rows] = data
        return padded.reshape(self.steps, self.batch, -1)

    def pack(self, padded: np.ndarray) -> np.ndarray:
        return padded.reshape(self.steps * self.batch, -1)[self.rows]


def _run_stack(spec, layout, dropout_seed, bias, x, hx, weights, training, lease):
    if training:
        return run_training_forward(spec, layout, dropout_seed, bias, lease, x, hx, weights)
    layers = _layer_tuples(weights, bias)
    x_array = _array(x) if layout is None else layout.pad(_array(x))
    out, h_n = _core.forward(spec, layers, x_array, _array(hx),
                             None if layout is None else layout.lengths)
    return torch.from_numpy(out if layout is None else layout.pack(out)), torch.from_numpy(h_n)


class GRU(nn.Module):
    """``torch.nn.GRU`` computed by eigengru on the CPU, with ``reset_after`` (True: PyTorch's
    formulation; False: Cho et al. 2014, reset applied before the recurrent product)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None, reset_after: bool = True) -> None:
        super().__init__()
        dtype = constructor_arguments(_NAME, device, dtype, {
            "input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers})
        dropout = dropout_probability(dropout)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional, self.reset_after = bidirectional, reset_after
        self.mode, self.proj_size = "GRU", 0
        self._flat_weights_names = []
        for layer in layer_parameters(input_size, hidden_size, num_layers, bidirectional, bias):
            for name, shape in layer.items():
                self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype)))
                self._flat_weights_names.append(name)
        self.reset_parameters()

    def __getstate__(self) -> dict[str, Any]:
        """The module's state for pickle, copy and torch.save: everything but the pool of
        training caches and the packed weights of one-step calls (C++ objects of this process,
        made again on use), so that a copy holds only tensors, numbers and strings."""
        state = self.__dict__.copy()
        state.pop("_cache_pool", None)
        state.pop("_step_packings", None)
        return state

    def flatten_parameters(self) -> None:
        """Drops the packed weights of one-step calls, which are packed again at the next one.
        Needed only after editing parameters through ``.data`` outside training (no version
        counter records such edits); sequences read the parameters at every call."""
        self.__dict__.pop("_step_packings", None)

    def _spec(self, training: bool):
        """The core's description of this stack, from the attributes as they are now (a script
        may set ``dropout`` after construction, as with nn.GRU); dropout only in training."""
        return stack_spec(self.input_size, self.hidden_size, self.num_layers,
                          self.bidirectional, self.reset_after,
                          float(self.dropout) if training else 0.0)

    def reset_parameters(self) -> None:
        """Uniform in (-1/sqrt(H), 1/sqrt(H)), drawn in nn.GRU's order from torch's generator:
        after the same torch.manual_seed, nn.GRU and this module start with equal weights."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @property
    def _flat_weights(self) -> list[torch.Tensor]:
        parameters = self._parameters  # not getattr: nn.Module's lookup costs a step's time
        try:
            return [parameters[name] for name in self._flat_weights_names]
        except KeyError:  # weights computed from parameters: torch.nn.utils.parametrize, prune
            return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[torch.Tensor]]:
        per = 4 if self.bias else 2
        flat = self._flat_weights
        return [flat[k : k + per] for k in range(0, len(flat), per)]

    def extra_repr(self) -> str:
        """nn.GRU's text (``input_size, hidden_size`` and the arguments that differ from their
        defaults), then ``reset_after=False`` when it is."""
        text = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("proj_size", 0), ("num_layers", 1), ("bias", True),
                              ("batch_first", False), ("dropout", 0), ("bidirectional", False),
                              ("reset_after", True)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    def to_nn_gru(self) -> nn.GRU:
        """An equivalent ``torch.nn.GRU`` with copies of these parameters (of the weights they
        give, under parametrizations), for tools that need PyTorch's own module (CUDA, for
        one). Only ``reset_after=True`` has one."""
        if not self.reset_after:
            raise ValueError("to_nn_gru: torch.nn.GRU computes the reset_after=True formulation "
                             "only; this module has reset_after=False")
        weights = self._flat_weights
        twin = nn.GRU(self.input_size, self.hidden_size, self.num_layers, self.bias,
                      self.batch_first, self.dropout, self.bidirectional, dtype=weights[1].dtype)
        with torch.no_grad():
            for name, weight in zip(self._flat_weights_names, weights):
                getattr(twin, name).copy_(weight)
        twin.train(self.training)
        return twin

    def __prepare_scriptable__(self) -> nn.Module:
        # torch.jit.script calls this before compiling; the forward is Python around a C++
        # call, which TorchScript cannot compile, so say what works instead.
        raise RuntimeError(
            "torch.jit.script cannot compile eigengru.torch.GRU: its forward calls eigengru's "
            "C++ core from Python. Use torch.export.export, torch.jit.trace or "
            "torch.onnx.export, which all support it")

    def forward(self, input: Any, hx: torch.Tensor | None = None):
        # Under torch.compile the whole forward is one graph break: an opaque C++ call with its
        # own autograd node. Eager calls skip the wrapper that says so, which costs microseconds.
        if torch.compiler.is_compiling():
            return _opaque_forward(self, input, hx)
        return self._eager_forward(input, hx)

    def _eager_forward(self, input: Any, hx: torch.Tensor | None):
        weights = self._flat_weights  # once a call: under parametrizations, each read computes
        if torch.jit.is_tracing():
            # The tracer warns of every size it sees compared; this module's checks compare
            # the example's sizes, which the traced graph does not depend on.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                return self._forward(input, hx, weights)
        stepped = self._one_step(input, hx, weights)
        return stepped if stepped is not None else self._forward(input, hx, weights)

    def _one_step(self, input: Any, hx: torch.Tensor | None, flat: list[torch.Tensor]):
        """A single time step in inference (the loops of sampling and control) through the
        whole stack packed for single steps (C++ StackStep): weights packed once, and again only
        when they change (see ``_torch_cell.packing``). None where it does not apply: the caller
        then takes the general path, which also explains bad input."""
        try:
            unbatched = input.dim() == 2
            if input.shape[1 if self.batch_first and not unbatched else 0] != 1 or \
                    input.shape[-1] != self.input_size or input.dim() not in (2, 3) or (
                    self.training and self.dropout > 0 and self.num_layers > 1) or \
                    needs_grad([input, hx, *flat]) or torch.compiler.is_exporting() or \
                    transforms_active():
                return None
            packed = packing(self.__dict__.get("_step_packings"), flat, self.reset_after,
                             4 if self.bias else 2, stack=lambda: self._spec(False))
            self.__dict__["_step_packings"] = packed
            # the arrays contiguous, as the core reads them; it takes a step as (1, I) unbatched,
            # (1, B, I) or (B, 1, I), and shapes the output alike
            x = np.ascontiguousarray(input.numpy())
            rows = x.size // self.input_size
            shape = (self.num_layers * (2 if self.bidirectional else 1), rows, self.hidden_size)
            if hx is not None and hx.shape != (shape[::2] if unbatched else shape):
                return None
            h0 = None if hx is None else np.ascontiguousarray(hx.numpy().reshape(shape))
            out, h_n = packed.core.forward(x, h0)
        except (TypeError, ValueError, RuntimeError, IndexError, KeyError, AttributeError):
            return None
        return torch.from_numpy(out), torch.from_numpy(h_n[:, 0] if unbatched else h_n)

    def _forward(self, input: Any, hx: torch.Tensor | None, weights: list[torch.Tensor]):
        dtype = weights[1].dtype  # weight_hh_l0's
        check_parameter_dtype(_NAME, dtype)
        packed = isinstance(input, PackedSequence)
        layout = None
        if packed:
            layout = _PackedLayout(input)  # the core gets the padded batch and the lengths
            x, unbatched, batch = input.data, False, layout.batch
        else:
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"input: expected a Tensor or PackedSequence, got "
                                f"{type(input).__name__}")
            x = input
            unbatched = input_is_unbatched(input.shape, "input", self.input_size,
                                           step=False, batch_first=self.batch_first)
            if unbatched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            batch = x.shape[1]
        check_tensor(_NAME, x, "input", dtype)
        if packed and x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected a PackedSequence of (steps, batch, input_size) "
                             f"with input_size = {self.input_size}, got data of shape "
                             f"{shape_text(tuple(x.shape))}")
        stacked = self.num_layers * (2 if self.bidirectional else 1)
        if hx is not None:
            check_tensor(_NAME, hx, "hx", dtype)
            check_state(hx, "hx", STACK_STATE, (stacked, batch, self.hidden_size), unbatched)
            if unbatched:
                hx = hx.unsqueeze(1)
        if _torch_export.is_tracing():
            if packed:
                raise RuntimeError("eigengru.torch.GRU: a PackedSequence cannot be traced or "
                                   "exported; pass a padded tensor")
            out, h_n = _torch_export.traced_forward(self, x, hx, weights)
        else:
            out, h_n = self._run(x, hx, layout, weights)
        if packed:
            return PackedSequence(out, input.batch_sizes, input.sorted_indices,
                                  input.unsorted_indices), h_n
        if unbatched:
            return out.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, h_n

    def _run(self, x: torch.Tensor, hx: torch.Tensor | None, layout: _PackedLayout | None,
             weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The core's forward on time-major (or packed) x, through the autograd node when a
        gradient or dropout needs the training pass."""
        dropout = self.training and self.dropout > 0 and self.num_layers > 1
        # Training mode with dropout takes the training path even without gradients, since
        # nn.GRU applies dropout whenever the module is training; under no_grad no graph is kept.
        dropout_seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout else 0
        training_path = needs_grad([x, hx, *weights]) or dropout or transforms_active()
        lease = free_cache(self.__dict__, x.dtype) if training_path else None
        if training_path:  # an optimiser step is likely next, perhaps through .data
            self.__dict__.pop("_step_packings", None)
        return _run_stack(self._spec(self.training), layout, dropout_seed, self.bias,
                          x.contiguous(), None if hx is None else hx.contiguous(), weights,
                          training_path, lease)


@torch.compiler.disable
def _opaque_forward(module: GRU, input: Any, hx: torch.Tensor | None):
    return module._eager_forward(input, hx)
