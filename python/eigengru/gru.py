"""The ``GRU`` layer on NumPy arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core
from ._checks import check_shape, model_dtype, positive_int, real_array

_CACHES = {np.dtype(np.float32): _core.TrainingCacheFloat32, np.dtype(np.float64): _core.TrainingCacheFloat64}


class GRU:
    """A GRU layer with PyTorch's parameter names, shapes, gate order (r, z, n) and initialisation.

    ``reset_after=True`` is PyTorch's and cuDNN's formulation,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``reset_after=False`` is the original one of
    Cho et al. (2014), ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``. Both then update
    ``h' = (1 - z) * n + z * h``.

    Parameters are NumPy arrays reached as attributes (``gru.weight_ih_l0`` (3H, I),
    ``gru.weight_hh_l0`` (3H, H), ``gru.bias_ih_l0`` and ``gru.bias_hh_l0`` (3H,)); editing one in
    place changes the model, and assigning an array of the same shape replaces it (converted to
    the model's dtype). They start uniform in (-1/sqrt(H), 1/sqrt(H)), drawn from
    ``numpy.random.default_rng(seed)``.

    Inputs are ``(T, B, I)`` arrays; real floating-point and integer arrays are converted to the
    model's dtype, other dtypes are refused.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        reset_after: bool = True,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        state = self.__dict__
        state["input_size"] = positive_int(input_size, "input_size")
        state["hidden_size"] = positive_int(hidden_size, "hidden_size")
        state["bias"] = bool(bias)
        state["reset_after"] = bool(reset_after)
        state["dtype"] = model_dtype(dtype)
        state["_shapes"] = self._parameter_shapes()
        bound = 1.0 / np.sqrt(self.hidden_size)
        rng = np.random.default_rng(seed)
        state["_params"] = {
            name: rng.uniform(-bound, bound, shape).astype(self.dtype)
            for name, shape in self._shapes.items()
        }
        state["grads"] = {name: np.zeros_like(p) for name, p in self._params.items()}
        state["_cache"] = None

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        gates, inputs, hidden = 3 * self.hidden_size, self.input_size, self.hidden_size
        shapes = {"weight_ih_l0": (gates, inputs), "weight_hh_l0": (gates, hidden)}
        if self.bias:
            shapes.update({"bias_ih_l0": (gates,), "bias_hh_l0": (gates,)})
        return shapes

    # -- parameters ---------------------------------------------------------------------------
    def __getattr__(self, name: str) -> np.ndarray:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._params:
            array = real_array(value, name, self.dtype)
            check_shape(array, name, self._shapes[name], _MEANINGS[name[: name.rindex("_")]])
            self._params[name] = array.copy()
        elif name in self.__dict__ or name in ("input_size", "hidden_size", "bias", "dtype"):
            raise AttributeError(f"{name} is fixed when the GRU is built; make a new GRU instead")
        else:
            super().__setattr__(name, value)

    def parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` pairs in PyTorch's order; the arrays are the live parameters."""
        yield from self._params.items()

    def zero_grad(self) -> None:
        """Set every accumulated gradient in ``grads`` to zero, in place."""
        for g in self.grads.values():
            g.fill(0)

    # -- compute ------------------------------------------------------------------------------
    def __call__(self, x: Any, h0: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Inference: ``out, h_n = gru(x, h0)``; see ``forward``."""
        return self.forward(x, h0)

    def forward(
        self, x: Any, h0: Any = None, *, train: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the layer over a sequence.

        x: ``(T, B, I)``. h0: ``(1, B, H)``, or None for zeros.
        Returns ``out`` ``(T, B, H)`` (the hidden state after every step) and ``h_n`` ``(1, B, H)``.
        With ``train=True`` the model keeps what ``backward`` needs (one backward per forward).
        """
        x = real_array(x, "x", self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            check_shape(x, "x", (-1, -1, self.input_size), "(steps, batch, input_size)")
        steps, batch = x.shape[:2]
        if h0 is not None:
            h0 = real_array(h0, "h0", self.dtype)
            check_shape(h0, "h0", (1, batch, self.hidden_size), "(1, batch, hidden_size)")
            h0 = h0[0]
        weights = self._layer_weights()
        if train:
            cache = _CACHES[self.dtype]()
            out, h_n = _core.forward_training(*weights, x, h0, cache)
            self.__dict__["_cache"] = cache
        else:
            out, h_n = _core.forward(*weights, x, h0)
        return out, h_n[np.newaxis]

    def backward(self, grad_out: Any, grad_h_n: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Backpropagate through the last ``forward(..., train=True)``, which it consumes.

        grad_out: dL/d out ``(T, B, H)``, or None for zeros. grad_h_n: dL/d h_n ``(1, B, H)``, or
        None for zeros. Returns ``dx`` ``(T, B, I)`` and ``dh0`` ``(1, B, H)``, and adds the
        parameter gradients into ``grads``. Weights replaced or edited after that forward do not
        matter: the gradient is that of the forward that ran.
        """
        cache = self._cache
        if cache is None or not cache.ready:
            raise RuntimeError(
                "backward: no training forward to differentiate; call "
                "forward(x, train=True) first (each forward allows one backward)"
            )
        steps, batch, hidden = cache.steps, cache.batch, self.hidden_size
        if grad_out is not None:
            grad_out = real_array(grad_out, "grad_out", self.dtype)
            check_shape(grad_out, "grad_out", (steps, batch, hidden), "(steps, batch, hidden_size)")
        if grad_h_n is not None:
            grad_h_n = real_array(grad_h_n, "grad_h_n", self.dtype)
            check_shape(grad_h_n, "grad_h_n", (1, batch, hidden), "(1, batch, hidden_size)")
            grad_h_n = grad_h_n[0]
        g = self.grads
        dx, dh0 = _core.backward(
            cache, grad_out, grad_h_n, g["weight_ih_l0"], g["weight_hh_l0"],
            g.get("bias_ih_l0"), g.get("bias_hh_l0"),
        )
        self.__dict__["_cache"] = None
        return dx, dh0[np.newaxis]

    def _layer_weights(self) -> tuple[Any, ...]:
        p = self._params
        return (p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0"),
                self.reset_after)

    def __repr__(self) -> str:
        return (
            f"GRU({self.input_size}, {self.hidden_size}, bias={self.bias}, "
            f"reset_after={self.reset_after}, dtype={self.dtype.name})"
        )


_MEANINGS = {
    "weight_ih": "(3 * hidden_size, input_size)",
    "weight_hh": "(3 * hidden_size, hidden_size)",
    "bias_ih": "(3 * hidden_size,)",
    "bias_hh": "(3 * hidden_size,)",
}
