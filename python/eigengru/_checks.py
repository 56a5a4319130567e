"""Argument checks shared by the public classes: each error names the argument and what was
expected."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1; bools and non-integers are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected a positive integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name}: expected a positive integer, got {number}")
    return number


def model_dtype(dtype: Any) -> np.dtype:
    """The dtype a model computes in: float32 or float64."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if resolved not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {resolved}")
    return resolved


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def real_array(value: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype`` (no copy when it already is one).

    Real floating-point and integer arrays are converted to the model's dtype, as NumPy's own
    arithmetic would; booleans, complex numbers, objects and strings are refused rather than
    silently reinterpreted.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(
            f"{name}: expected a real floating-point or integer array, got dtype {array.dtype}"
        )
    return np.ascontiguousarray(array, dtype=dtype)


def check_shape(array: np.ndarray, name: str, expected: tuple[int, ...], meaning: str) -> None:
    """Raise ValueError unless ``array.shape == expected`` (an array or a tensor); ``meaning``
    names the dimensions."""
    if tuple(array.shape) != tuple(expected):
        raise ValueError(
            f"{name}: expected shape {meaning} = {shape_text(tuple(expected))}, "
            f"got {shape_text(tuple(array.shape))}"
        )


def dropout_probability(value: Any, name: str = "dropout") -> float:
    """``value`` as a probability in [0, 1); bools and non-numbers are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: expected a number in [0, 1), got {value!r}")
    probability = float(value)
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return probability


def input_is_unbatched(shape: tuple[int, ...], name: str, input_size: int, step: bool,
                       batch_first: bool = False) -> bool:
    """Whether an input of this shape is unbatched. Raises ValueError unless it is one step,
    ``(batch, input_size)`` or ``(input_size,)`` (``step``), or a sequence, ``(steps, batch,
    input_size)`` (``(batch, steps, input_size)`` with ``batch_first``) or ``(steps,
    input_size)``. Cheap when the shape is right: step loops call it on every step."""
    batched = 2 if step else 3
    dims = len(shape)
    if (dims == batched or dims == batched - 1) and shape[-1] == input_size:
        return dims != batched
    if step:
        layout = "(batch, input_size) or (input_size,)"
    else:
        layout = ("(batch, steps, input_size)" if batch_first
                  else "(steps, batch, input_size)") + " or (steps, input_size)"
    raise ValueError(f"{name}: expected shape {layout} with input_size = {input_size}, "
                     f"got {shape_text(tuple(shape))}")


def check_state(state: Any, name: str, dims: tuple[str, ...], sizes: tuple[int, ...],
                unbatched: bool) -> None:
    """Raise ValueError unless a state (an array or a tensor) has the shape ``sizes``, whose
    dimensions ``dims`` names, less the ``"batch"`` dimension for an unbatched input."""
    if not unbatched and state.shape == sizes:  # the common case, on every step of a loop
        return
    if unbatched:
        sizes = tuple(size for size, dim in zip(sizes, dims) if dim != "batch")
        if state.shape == sizes:
            return
        dims = tuple(dim for dim in dims if dim != "batch")
    check_shape(state, name, sizes, "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")")


#: The dimensions of a stack's state (h0, h_n, hx) and of a cell's.
STACK_STATE = ("num_layers * directions", "batch", "hidden_size")
CELL_STATE = ("batch", "hidden_size")
