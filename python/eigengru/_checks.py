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
    """Raise ValueError unless ``array.shape == expected``; ``meaning`` names the dimensions."""
    if array.shape != expected:
        raise ValueError(
            f"{name}: expected shape {meaning} = {shape_text(expected)}, "
            f"got {shape_text(array.shape)}"
        )
