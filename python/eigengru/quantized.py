"""``QuantizedGRU``: a ``GRU``'s inference with bfloat16 or int8 weights (``GRU.quantize``)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from . import _core, nonlinearities
from ._atomic import replace_atomically
from ._sequences import sequence_inputs, user_layout
from .stream import Stream

#: The precisions ``GRU.quantize`` takes.
PRECISIONS = ("bfloat16", "int8")

_SHAPE = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional",
          "reset_after", "reverse")


class QuantizedGRU:
    """A ``GRU`` for inference with its weight matrices stored in bfloat16 or int8; biases,
    states and gates stay float32. Made by ``GRU.quantize(precision)`` or
    ``QuantizedGRU.load(path)``; called as the float model is: ``out, h_n = q(x, h0=None, *,
    lengths=None)``, with every layer, direction, formulation, layout and function of the float
    model, and ``q.stream(batch)`` for step-by-step inference.

    bfloat16: weights and the products' other operand (an input or a state) rounded to bfloat16,
    products summed in float32. int8: each weight row scaled to [-127, 127] by its largest
    magnitude, and each operand row likewise when the product runs (dynamic quantization);
    products summed exactly in int32. On CPUs with AVX512-BF16 and AVX512-VNNI the products run
    on their dot-product instructions; elsewhere the float kernel multiplies the values the
    quantized weights and operands stand for, at the float model's speed (``kernel``).

    Quantized models have no backward: ``forward(..., train=True)`` and ``backward`` raise.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("QuantizedGRU: make one with GRU.quantize('bfloat16' | 'int8') or "
                        "QuantizedGRU.load(path)")

    @classmethod
    def _made(cls, config: dict[str, Any], functions: tuple[Any, Any, float | None],
              core: Any) -> QuantizedGRU:
        model = object.__new__(cls)
        state = model.__dict__
        for name in _SHAPE:
            state[name] = config[name]
        state["gate_activation"], state["candidate_activation"], state["clip"] = functions
        state["precision"] = core.precision
        state["dtype"] = np.dtype(np.float32)
        state["_core"] = core
        return model

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def functions(self) -> tuple[Any, Any, float | None]:
        """(gate_activation, candidate_activation, clip)."""
        return (self.gate_activation, self.candidate_activation, self.clip)

    @property
    def kernel(self) -> str:
        """The product kernel this CPU runs: "avx512-bf16", "avx512-vnni", "avx2-maddubs" (int8
        without VNNI), "avx2-fma" (bfloat16 without AVX512-BF16) or "portable"."""
        return _core.quantized_kernel(self.precision)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"QuantizedGRU: {name} cannot be set (a quantized model is fixed; "
                             "quantize the float model again)")

    # -- compute ------------------------------------------------------------------------------
    def __call__(self, x: Any, h0: Any = None, *,
                 lengths: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``out, h_n = q(x, h0=None, *, lengths=None)``, as ``GRU.forward`` in inference."""
        return self.forward(x, h0, lengths=lengths)

    def forward(self, x: Any, h0: Any = None, *, lengths: Any = None,
                train: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``GRU.forward``'s inference; ``train=True`` raises (a quantized model has no
        backward)."""
        if train:
            raise RuntimeError("QuantizedGRU: inference only; train the float GRU and quantize "
                               "it again")
        x, h0, lengths, unbatched = sequence_inputs(self, x, h0, lengths)
        out, h_n = self._core.forward(x, h0, lengths)
        return user_layout(out, unbatched, self.batch_first), (h_n[:, 0] if unbatched else h_n)

    def backward(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("QuantizedGRU: inference only, there is no backward; train the float "
                           "GRU and quantize it again")

    def stream(self, batch: int = 1) -> Stream:
        """A ``Stream`` of this (unidirectional) model over ``batch`` sequences; its steps give
        ``forward``'s numbers bit for bit."""
        return Stream(self, batch)

    def dequantized(self) -> Any:
        """A float32 ``GRU`` whose weights are the values this model's quantized weights stand
        for (its biases unchanged): what the quantization did to the weights, apart from the
        operands' rounding."""
        from .gru import GRU

        model = GRU(**self.config(), dtype=np.float32)
        model.load_state_dict(self.state_dict())
        return model

    def state_dict(self) -> dict[str, np.ndarray]:
        """The parameters' float32 values, named as in ``GRU.state_dict()``: each weight as the
        value its quantized form stands for."""
        from .parameters import layer_parameters

        names = layer_parameters(self.input_size, self.hidden_size, self.num_layers,
                                 self.bidirectional, self.bias)
        result = {}
        for layer, arrays in zip(names, self._core.layers()):
            (w_ih, w_ih_scales), (w_hh, w_hh_scales), b_ih, b_hh = arrays
            values = [_dequantized(w_ih, w_ih_scales), _dequantized(w_hh, w_hh_scales)]
            if self.bias:
                values += [b_ih, b_hh]
            result.update(zip(layer, values))
        return result

    def quantized_arrays(self) -> list[dict[str, np.ndarray | None]]:
        """The stored form, per layer-direction in PyTorch's order: ``weight_ih`` and
        ``weight_hh`` (int8 values, or bfloat16 bit patterns as uint16), ``weight_ih_scales``
        and ``weight_hh_scales`` (float32 per row, int8 only, else None), ``bias_ih`` and
        ``bias_hh`` (float32, or None)."""
        return [{"weight_ih": w_ih, "weight_ih_scales": s_ih, "weight_hh": w_hh,
                 "weight_hh_scales": s_hh, "bias_ih": b_ih, "bias_hh": b_hh}
                for (w_ih, s_ih), (w_hh, s_hh), b_ih, b_hh in self._core.layers()]

    # -- files --------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The ``GRU`` constructor arguments of this model's shape and functions."""
        return {k: getattr(self, k) for k in _SHAPE if k != "reverse"} | \
            ({"reverse": True} if self.reverse else {}) | nonlinearities.changed(self.functions)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to a ``.egru`` file (format version 2, which ``eigengru::load_model``
        reads in C++), under a temporary name renamed into place."""
        replace_atomically(os.fspath(path),
                           lambda temporary: self._core.save(temporary, self.bias,
                                                             self.batch_first))

    @classmethod
    def load(cls, path: str | os.PathLike) -> QuantizedGRU:
        """Read a model written by ``save``; a file that is not one, or is damaged, raises
        ValueError."""
        path = os.fspath(path)
        try:
            config, core = _core.QuantizedGRU.load(path)
        except RuntimeError as error:
            raise ValueError(str(error)) from None
        functions = nonlinearities.from_core(config["function_kinds"], config["function_values"])
        return cls._made(config, functions, core)

    def __getstate__(self) -> bytes:
        """Pickled as its ``.egru`` file."""
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.egru")
            self.save(path)
            with open(path, "rb") as f:
                return f.read()

    def __setstate__(self, state: bytes) -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.egru")
            with open(path, "wb") as f:
                f.write(state)
            self.__dict__.update(QuantizedGRU.load(path).__dict__)

    def __repr__(self) -> str:
        extras = "".join(f", {k}={v!r}" for k, v in self.config().items()
                         if k not in ("input_size", "hidden_size"))
        return (f"QuantizedGRU({self.input_size}, {self.hidden_size}{extras}, "
                f"precision={self.precision!r})")


def quantize(model: Any, precision: str) -> QuantizedGRU:
    """``model.quantize(precision)`` of a ``GRU``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    weights = model._layer_weights()
    if model.dtype != np.float32:
        weights = [tuple(None if w is None else w.astype(np.float32) for w in layer)
                   for layer in weights]
    for names, layer in zip(model._layer_names(), weights):
        for name, w in zip(names, layer):
            if w is not None and not np.all(np.isfinite(w)):
                raise ValueError(f"quantize: {name} has values that are not finite")
    config = {k: getattr(model, k) for k in _SHAPE}
    core = _core.QuantizedGRU(_core.StackSpec(
        model.input_size, model.hidden_size, model.num_layers, model.bidirectional,
        model.reset_after, 0.0, model.reverse, nonlinearities.core_functions(*model.functions)),
        weights, precision)
    return QuantizedGRU._made(config, model.functions, core)


def _dequantized(values: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    if scales is not None:  # int8
        return (values.astype(np.float32) * scales[:, np.newaxis]).astype(np.float32)
    return (values.astype(np.uint32) << 16).view(np.float32)
