"""A linear layer for NumPy training loops: the read-out on top of a GRU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ._checks import model_dtype, positive_int


class Linear:
    """``y = x W^T + b`` over the last axis, PyTorch's layout and initialisation.

    ``forward`` remembers its input; ``backward(grad_y)`` returns ``grad_x`` and adds the
    parameter gradients into ``grads``.
    """

    def __init__(self, in_features: int, out_features: int, dtype: Any = np.float32,
                 seed: int | None = None) -> None:
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dtype = model_dtype(dtype)
        bound = 1.0 / np.sqrt(self.in_features)
        rng = np.random.default_rng(seed)
        self.weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        self.bias = rng.uniform(-bound, bound, out_features).astype(dtype)
        self.grads = {"weight": np.zeros_like(self.weight), "bias": np.zeros_like(self.bias)}
        self._x: np.ndarray | None = None

    def parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        yield "weight", self.weight
        yield "bias", self.bias

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected last dimension in_features = {self.in_features}, "
                             f"got shape {x.shape}")
        self._x = x
        return x @ self.weight.T + self.bias

    __call__ = forward

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("backward: call forward first")
        x = self._x.reshape(-1, self.in_features)
        g = grad_y.reshape(-1, self.out_features)
        self.grads["weight"] += (g.T @ x).astype(self.weight.dtype)
        self.grads["bias"] += g.sum(axis=0).astype(self.bias.dtype)
        return (grad_y @ self.weight).astype(self._x.dtype)

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)
