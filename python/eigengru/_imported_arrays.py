"""Weights arriving from other libraries (PyTorch, Keras, ONNX): as NumPy arrays, the model
dtype they give, and their gate order, which every importer of ``eigengru.interop`` shares."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import model_dtype


def as_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a PyTorch tensor (detached, moved to the CPU) or anything
    with ``__array__``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def dtype_of(dtype: Any, array: np.ndarray) -> np.dtype:
    """The model dtype of an import: ``dtype`` when given, else the weights' own, float32 or
    float64 (any other dtype, float16 or an integer one, gives float32)."""
    if dtype is not None:
        return model_dtype(dtype)
    return np.dtype(np.float64) if array.dtype == np.float64 else np.dtype(np.float32)


def zr_to_rz(blocks: np.ndarray, hidden: int, axis: int = 0) -> np.ndarray:
    """Reorder gate blocks of size ``hidden`` along ``axis`` from (z, r, h) to (r, z, n), or
    back: swapping the first two blocks is its own inverse."""
    z, r, h = np.split(blocks, [hidden, 2 * hidden], axis=axis)
    return np.concatenate([r, z, h], axis=axis)
