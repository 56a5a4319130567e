"""The seed formulation (interop.from_seed), literally, against the library, reset_after=False.

It reads, with weights acting on the concatenation [h, x] and no biases:
    z = sigmoid(W_z [h_{t-1}, x_t])
    r = sigmoid(W_r [h_{t-1}, x_t])
    h~ = tanh(W [r * h_{t-1}, x_t])
    h_t = (1 - z) * h_{t-1} + z * h~
The library's update is h_t = (1 - z') * n + z' * h_{t-1}, so z' = 1 - z = sigmoid(-W_z [h, x]):
the update gate's weights are negated, the others split into their h and x columns.
"""

from __future__ import annotations

import numpy as np
import pytest

import eigengru

from .conftest import assert_close


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def seed_formulation_gru(W_z, W_r, W, xs, h):
    """The four equations, one step at a time, for a single sequence."""
    states = []
    for x in xs:
        z = sigmoid(W_z @ np.concatenate([h, x]))
        r = sigmoid(W_r @ np.concatenate([h, x]))
        h_tilde = np.tanh(W @ np.concatenate([r * h, x]))
        h = (1 - z) * h + z * h_tilde
        states.append(h)
    return np.array(states)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_library_computes_the_seed_formulation_equations(rng, dtype):
    steps, inputs, hidden = 12, 4, 6
    W_z, W_r, W = (rng.uniform(-0.7, 0.7, (hidden, hidden + inputs)) for _ in range(3))
    xs = rng.standard_normal((steps, inputs))
    h0 = rng.uniform(-0.5, 0.5, hidden)

    gru = eigengru.GRU(inputs, hidden, bias=False, reset_after=False, dtype=dtype)
    h_cols, x_cols = slice(0, hidden), slice(hidden, hidden + inputs)
    gru.weight_ih_l0 = np.concatenate([W_r[:, x_cols], -W_z[:, x_cols], W[:, x_cols]])
    gru.weight_hh_l0 = np.concatenate([W_r[:, h_cols], -W_z[:, h_cols], W[:, h_cols]])

    expected = seed_formulation_gru(W_z, W_r, W, xs, h0)
    out, h_n = gru(xs[:, np.newaxis, :], h0[np.newaxis, np.newaxis, :])
    assert_close(out[:, 0, :], expected, dtype, "out")
    assert_close(h_n[0, 0], expected[-1], dtype, "h_n")
