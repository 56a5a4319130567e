"""How many threads eigengru's kernels use."""

from __future__ import annotations

import operator

from . import _core


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (n >= 1) in every later call, from any Python thread.

    The default follows OpenMP: ``OMP_NUM_THREADS`` when set, else the number of cores.
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads eigengru's kernels use."""
    return _core.get_num_threads()
