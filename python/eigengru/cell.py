"""``GRUCell`` on NumPy arrays: one GRU step per call, and backpropagation through a Python loop
of steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._checks import (
    CELL_STATE,
    check_shape,
    check_state,
    input_is_unbatched,
    model_dtype,
    positive_int,
    real_array,
)
from .parameters import NamedParameters

_CELLS = {np.dtype(np.float32): _core.GRUCellFloat32, np.dtype(np.float64): _core.GRUCellFloat64}


class GRUCell(NamedParameters):
    """One GRU layer applied one time step per call: ``torch.nn.GRUCell``'s computation, names
    and shapes on NumPy arrays, with ``reset_after`` as in ``GRU``.

    Parameters are the attributes ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and
    ``bias_hh`` (3H,), uniform in (-1/sqrt(H), 1/sqrt(H)) from ``numpy.random.default_rng(seed)``
    at the start. The cell packs them for its C++ step at the first call, and again after a
    parameter is assigned, after ``load_state_dict``, after every ``backward`` (an optimiser
    updates the weights in place next) and after ``repack()``: call that after editing a
    parameter in place outside training.

    Inference: ``h1 = cell(x, h)``. Training through a loop: ``h1 = cell.forward(x, h,
    train=True)`` keeps what the step's backward needs, and ``dx, dh = cell.backward(grad_h1)``
    takes the kept steps back last-in first-out, adding the parameter gradients into
    ``cell.grads``. x is ``(B, I)`` or unbatched ``(I,)``; h is ``(B, H)`` (``(H,)``) or None for
    zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 reset_after: bool = True, dtype: Any = np.float32, seed: int | None = None
                 ) -> None:
        state = self.__dict__
        state["input_size"] = positive_int(input_size, "input_size")
        state["hidden_size"] = positive_int(hidden_size, "hidden_size")
        state["bias"], state["reset_after"] = bool(bias), bool(reset_after)
        state["dtype"] = model_dtype(dtype)
        gates = 3 * self.hidden_size
        shapes = {"weight_ih": (gates, self.input_size), "weight_hh": (gates, self.hidden_size)}
        if self.bias:
            shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
        state["_shapes"] = shapes
        bound = 1.0 / np.sqrt(self.hidden_size)
        rng = np.random.default_rng(seed)
        state["_params"] = {name: rng.uniform(-bound, bound, shape).astype(self.dtype)
                            for name, shape in shapes.items()}
        state["grads"] = {name: np.zeros_like(p) for name, p in self._params.items()}
        state["_core"] = None  # the packed C++ cell, made at the first call
        state["_stale"] = False  # a backward ran since packing: pack again at the next forward
        state["_saved"] = []  # the training steps awaiting their backward, last on top

    def _parameters_changed(self) -> None:
        self.__dict__["_core"] = None

    def repack(self) -> None:
        """Pack the parameters again at the next call (after editing one in place)."""
        self._parameters_changed()

    def _packed(self) -> Any:
        if self._core is None or self._stale:
            p = self._params
            self.__dict__["_core"] = _CELLS[self.dtype](
                p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"),
                self.reset_after)
            self.__dict__["_stale"] = False
        return self._core

    @property
    def saved_steps(self) -> int:
        """How many training steps await their backward."""
        return len(self._saved)

    def __call__(self, x: Any, h: Any = None) -> np.ndarray:
        """Inference: the next state; see ``forward``."""
        return self.forward(x, h)

    def forward(self, x: Any, h: Any = None, *, train: bool = False) -> np.ndarray:
        """The next state from x ``(B, I)`` (or ``(I,)``) and h ``(B, H)`` (``(H,)``), None for
        zeros. With ``train=True`` the step is kept for ``backward`` (one backward per step)."""
        if not train:
            h_next = self._loop_step(x, h)
            if h_next is not None:
                return h_next
        x = real_array(x, "x", self.dtype)
        unbatched = input_is_unbatched(x.shape, "x", self.input_size, step=True)
        x = x[np.newaxis] if unbatched else x
        shape = (x.shape[0], self.hidden_size)
        if h is None:
            h = np.zeros(shape, self.dtype)
        else:
            h = real_array(h, "h", self.dtype)
            check_state(h, "h", CELL_STATE, shape, unbatched)
            h = h.reshape(shape)
        core = self._packed()
        h_next = np.empty(shape, self.dtype)
        if train:
            record = np.empty((shape[0], core.record_size), self.dtype)
            core.forward(x, h, h_next, record)
            # copies: the caller may reuse its buffers before the backward
            self._saved.append((core, x.copy(), h.copy(), record, unbatched))
        else:
            core.forward(x, h, h_next, None)
        return h_next[0] if unbatched else h_next

    def _loop_step(self, x: Any, h: Any) -> np.ndarray | None:
        """The call of a step loop, x ``(B, I)`` and h ``(B, H)``, with no checks but the
        core's: None where the core refuses the arrays (a dtype to convert, a shape to explain,
        no state), and the general path then takes the call."""
        try:
            h_next = np.empty(h.shape, self.dtype)
            self._packed().forward(x, h, h_next, None)
        except (AttributeError, TypeError, ValueError):
            return None
        return h_next

    def backward(self, grad_h_next: Any) -> tuple[np.ndarray, np.ndarray]:
        """Backpropagate through the last kept training step, which it consumes: grad_h_next =
        dL/d(that step's output), shaped as it was. Returns ``dx`` and ``dh`` (the gradient for
        the step's input state: add it to the previous step's output gradient) and adds the
        parameter gradients into ``grads``."""
        if not self._saved:
            raise RuntimeError("backward: no training step to differentiate; call "
                               "forward(x, h, train=True) first (each step allows one backward)")
        core, x, h, record, unbatched = self._saved[-1]  # the cell of that step's forward
        grad = real_array(grad_h_next, "grad_h_next", self.dtype)
        check_shape(grad, "grad_h_next", h.shape[1:] if unbatched else h.shape,
                    "the step's output shape")
        grad = grad.reshape(h.shape)
        dx, dh = np.empty_like(x), np.empty_like(h)
        grads = tuple(self.grads.get(name) for name in ("weight_ih", "weight_hh", "bias_ih",
                                                        "bias_hh"))
        core.backward(x, h, record, grad, dx, dh, grads, True)
        self._saved.pop()
        self.__dict__["_stale"] = True  # an optimiser step is likely before the next forward
        return (dx[0], dh[0]) if unbatched else (dx, dh)

    def clear_saved(self) -> None:
        """Drop the kept training steps (to start a new loop without backpropagating)."""
        self._saved.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Configuration, parameters and gradients; not the packed cell nor kept steps."""
        state = super().__getstate__()
        state["_core"], state["_stale"], state["_saved"] = None, False, []
        return state

    def __repr__(self) -> str:
        extras = "" if self.bias else ", bias=False"
        return (f"GRUCell({self.input_size}, {self.hidden_size}{extras}, "
                f"reset_after={self.reset_after}, dtype={self.dtype.name})")
