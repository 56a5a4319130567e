"""Writes a fixture for the C++ test test_stream: models saved by eigengru.GRU.save (.egru), one
with the standard functions and one with others, a model quantized to each precision and saved
by QuantizedGRU.save, an input x (T, B, I) and the output Python computes for it with each, as
raw little-endian float32.

    python tests/cpp/make_fixture.py FOLDER
"""

import sys
from pathlib import Path

import numpy as np

import eigengru

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
x = np.random.default_rng(0).standard_normal((30, 2, 4)).astype("<f4")
x.tofile(folder / "x.f32")
models = {"": eigengru.GRU(4, 24, num_layers=2, reset_after=False, seed=5),
          "_functions": eigengru.GRU(4, 24, num_layers=2, seed=6, clip=1.5,
                                     gate_activation=("hard_sigmoid", 0.25, 0.5),
                                     candidate_activation="relu")}
for suffix, gru in models.items():
    gru.save(folder / f"model{suffix}.egru")
    out, _ = gru(x)
    out.astype("<f4").tofile(folder / f"out{suffix}.f32")
quantized = eigengru.GRU(4, 24, num_layers=2, seed=7)
for precision in ("bfloat16", "int8"):
    q = quantized.quantize(precision)
    q.save(folder / f"model_{precision}.egru")
    out, _ = q(x)
    out.astype("<f4").tofile(folder / f"out_{precision}.f32")
