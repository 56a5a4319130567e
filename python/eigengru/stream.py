"""``Stream``: a unidirectional ``GRU`` run one time step per call, for real-time loops."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._checks import check_shape, positive_int, real_array, shape_text

_STREAMS = {np.dtype(np.float32): _core.StreamFloat32, np.dtype(np.float64): _core.StreamFloat64}


class Stream:
    """A unidirectional stack run one time step per call over ``batch`` independent sequences,
    with its state kept between calls: ``out_t = stream.step(x_t)``.

    Made by ``GRU.stream(batch)``, it packs its own copy of the model's weights once: later
    changes to the model's weights do not reach it (make a new stream to take them up). Steps
    allocate nothing in the core; pass ``out=`` to reuse an output array as well. Over a sequence
    the outputs are the model's ``forward`` outputs, to the dtype's rounding.
    """

    def __init__(self, gru: Any, batch: int = 1) -> None:
        if gru.bidirectional or gru.reverse:
            raise ValueError(f"stream: a {'reverse' if gru.reverse else 'bidirectional'} GRU "
                             "cannot run step by step (its reverse direction starts at the end "
                             "of the sequence)")
        batch = positive_int(batch, "batch")
        quantized = getattr(gru, "precision", None) is not None
        if quantized:  # a QuantizedGRU
            self._core = _core.StreamFloat32(gru._core, batch)
        else:
            self._core = _STREAMS[gru.dtype](gru._spec, gru._layer_weights(), batch)
        self.dtype, self.batch = gru.dtype, batch
        self._shape = (batch, gru.hidden_size)
        self.input_size, self.hidden_size, self.num_layers = (gru.input_size, gru.hidden_size,
                                                              gru.num_layers)

    def step(self, x: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Advance every sequence by one step. x: ``(batch, input_size)``, or ``(input_size,)``
        for a stream of batch 1. Returns the top layer's new state, ``(batch, hidden_size)``
        (``(hidden_size,)`` for a 1-D x), in ``out`` when given (a C-contiguous array of the
        stream's dtype and that shape)."""
        try:  # the common call goes straight to the core, which checks what it reads
            result = np.empty(self._shape, self.dtype) if out is None else out
            self._core.step(x, result)
            return result
        except (TypeError, ValueError):
            return self._step_converted(x, out)

    def _step_converted(self, x: Any, out: np.ndarray | None) -> np.ndarray:
        """step() for any other x: other real dtypes and layouts, a 1-D x; clear errors."""
        x = real_array(x, "x", self.dtype)
        got, unbatched = x.shape, x.ndim == 1
        if unbatched and self.batch == 1:
            x = x[np.newaxis]
        if x.shape != (self.batch, self.input_size):
            expected = (f"(batch, input_size) = ({self.batch}, {self.input_size})"
                        + (f" or ({self.input_size},)" if self.batch == 1 else ""))
            raise ValueError(f"x: expected shape {expected}, got {shape_text(got)}")
        shape = (self.hidden_size,) if unbatched else self._shape
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif not (isinstance(out, np.ndarray) and out.dtype == self.dtype
                  and out.flags.c_contiguous and out.flags.writeable and out.shape == shape):
            raise ValueError(f"out: expected a writable C-contiguous {self.dtype} array of "
                             f"shape {shape_text(shape)}")
        self._core.step(x, out.reshape(self._shape))
        return out

    @property
    def state(self) -> np.ndarray:
        """A copy of every layer's state, ``(num_layers, batch, hidden_size)``; assign an array
        of that shape to set it."""
        return self._core.state()

    @state.setter
    def state(self, value: Any) -> None:
        h = real_array(value, "state", self.dtype)
        check_shape(h, "state", (self.num_layers, self.batch, self.hidden_size),
                    "(num_layers, batch, hidden_size)")
        self._core.set_state(h)

    def reset(self) -> None:
        """Zero every layer's state, as at the start."""
        self._core.reset()

    def __repr__(self) -> str:
        return (f"Stream(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, batch={self.batch}, dtype={self.dtype.name})")
