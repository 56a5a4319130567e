"""How many threads eigengru's kernels use."""

from __future__ import annotations

from . import _core
from ._checks import positive_int


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (n >= 1) in every later call, from any Python thread.

    The default follows OpenMP: ``OMP_NUM_THREADS`` when set, else the number of cores.
    """
    _core.set_num_threads(positive_int(n, "set_num_threads: n"))


def get_num_threads() -> int:
    """The number of threads eigengru's kernels use."""
    return _core.get_num_threads()
