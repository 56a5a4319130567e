"""Writes a fixture for the C++ test test_stream: a model saved by eigengru.GRU.save (.egru),
an input x (T, B, I) and the output Python computes for it, as raw little-endian float32.

    python tests/cpp/make_fixture.py FOLDER
"""

import sys
from pathlib import Path

import numpy as np

import eigengru

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
gru = eigengru.GRU(4, 24, num_layers=2, reset_after=False, seed=5)
gru.save(folder / "model.egru")
x = np.random.default_rng(0).standard_normal((30, 2, 4)).astype("<f4")
out, _ = gru(x)
x.tofile(folder / "x.f32")
out.astype("<f4").tofile(folder / "out.f32")
