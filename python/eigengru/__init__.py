"""eigengru: a fast CPU GRU (gated recurrent unit) with forward and backward passes in C++.

>>> import numpy as np, eigengru
>>> gru = eigengru.GRU(input_size=8, hidden_size=16, seed=0)
>>> out, h_n = gru(np.ones((5, 2, 8), dtype=np.float32))
>>> out.shape, h_n.shape
((5, 2, 16), (1, 2, 16))
"""

from __future__ import annotations

from . import interop
from ._core import __version__, build_info
from .cell import GRUCell
from .gru import GRU
from .quantized import QuantizedGRU
from .stream import Stream
from .threads import get_num_threads, set_num_threads

__all__ = ["GRU", "GRUCell", "QuantizedGRU", "Stream",
           "__version__", "build_info", "get_num_threads", "interop",
           "set_num_threads"]
