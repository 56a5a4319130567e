"""Training helpers for the NumPy API: the Adam optimiser and gradient-norm clipping."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class Adam:
    """Adam (Kingma and Ba, 2015) over named arrays, which it updates in place.

    >>> optimizer = Adam(dict(gru.parameters()), lr=1e-3)
    >>> optimizer.step(gru.grads)
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas}")
        self.params = dict(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.steps = 0
        self._m = {k: np.zeros_like(p) for k, p in self.params.items()}
        self._v = {k: np.zeros_like(p) for k, p in self.params.items()}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update from ``grads`` (same names and shapes as the parameters)."""
        missing = [k for k in self.params if k not in grads]
        if missing:
            raise KeyError(f"step: no gradient for {', '.join(missing)}")
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.steps, 1 - b2**self.steps
        for name, p in self.params.items():
            g = grads[name] + self.weight_decay * p if self.weight_decay else grads[name]
            m, v = self._m[name], self._v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * np.square(g)
            p[...] -= (self.lr / correction1) * m / (np.sqrt(v / correction2) + self.eps)


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``;
    returns the norm before clipping."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                             for g in grads.values())))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g[...] *= scale
    return norm
