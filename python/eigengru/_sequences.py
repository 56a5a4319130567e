"""A stack's sequence arguments: checked and put in the core's layout (time-major), and its
results put back in the caller's layout. Shared by the float and quantized models."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import STACK_STATE, check_state, input_is_unbatched, real_array, shape_text


def sequence_inputs(model: Any, x: Any, h0: Any, lengths: Any
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """A stack's forward arguments, checked and in the core's layout: ``(x (T, B, I), h0
    (L*D, B, H) or None, lengths (B,) int64 or None, whether x was unbatched)``. ``model`` has a
    GRU's shape attributes and ``dtype``."""
    x = real_array(x, "x", model.dtype)
    unbatched = input_is_unbatched(x.shape, "x", model.input_size, step=False,
                                   batch_first=model.batch_first)
    if unbatched:
        x = x[:, np.newaxis, :]
    elif model.batch_first:  # one step's (B, 1, I) is (1, B, I) already
        x = x.reshape(1, x.shape[0], -1) if x.shape[1] == 1 else \
            np.ascontiguousarray(x.transpose(1, 0, 2))
    steps, batch = x.shape[:2]
    stacked = model.num_layers * model.directions
    if h0 is not None:
        h0 = real_array(h0, "h0", model.dtype)
        check_state(h0, "h0", STACK_STATE, (stacked, batch, model.hidden_size), unbatched)
        if unbatched:
            h0 = np.ascontiguousarray(h0[:, np.newaxis, :])
    if lengths is not None:
        lengths = _checked_lengths(lengths, batch, steps, unbatched)
    return x, h0, lengths, unbatched


def user_layout(sequence: np.ndarray, unbatched: bool, batch_first: bool) -> np.ndarray:
    """(T, B, F) as the caller laid out its input."""
    if unbatched:
        return sequence[:, 0]
    if batch_first:  # one step's (1, B, F) is (B, 1, F) already
        return sequence.reshape(sequence.shape[1], 1, -1) if len(sequence) == 1 else \
            np.ascontiguousarray(sequence.transpose(1, 0, 2))
    return sequence


def _checked_lengths(lengths: Any, batch: int, steps: int, unbatched: bool) -> np.ndarray:
    if unbatched:
        raise ValueError("lengths: only for batched input; an unbatched sequence is all valid")
    array = np.asarray(lengths)
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"lengths: expected one length per batch row, shape ({batch},), "
                         f"got {shape_text(array.shape)}")
    if batch and (array.min() < 1 or array.max() > steps):
        raise ValueError(f"lengths: each must be in [1, {steps}] (the number of steps), "
                         f"got min {array.min()} and max {array.max()}")
    return np.ascontiguousarray(array, dtype=np.int64)
