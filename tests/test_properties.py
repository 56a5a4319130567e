"""Property-based tests: random configurations against the NumPy reference, forward and
backward (hypothesis draws the shapes, flags and data)."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import eigengru  # noqa: E402

from . import reference  # noqa: E402
from .conftest import assert_close  # noqa: E402


@st.composite
def configurations(draw):
    steps = draw(st.integers(1, 6))
    batch = draw(st.integers(1, 4))
    return dict(
        steps=steps, batch=batch,
        input_size=draw(st.integers(1, 5)), hidden_size=draw(st.integers(1, 9)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()), reset_after=draw(st.booleans()),
        bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
        lengths=draw(st.none() | st.lists(st.integers(1, steps), min_size=batch, max_size=batch)),
        with_h0=draw(st.booleans()), seed=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=60, deadline=None)
@given(configurations())
def test_random_configurations_match_the_reference(c):
    rng = np.random.default_rng(c["seed"])
    gru = eigengru.GRU(c["input_size"], c["hidden_size"], num_layers=c["num_layers"],
                       bias=c["bias"], batch_first=c["batch_first"],
                       bidirectional=c["bidirectional"], reset_after=c["reset_after"],
                       dtype=c["dtype"])
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.7, 0.7, p.shape))
    T, B, H, D = c["steps"], c["batch"], c["hidden_size"], gru.directions
    LD = c["num_layers"] * D
    x = rng.standard_normal((T, B, c["input_size"]))
    h0 = rng.uniform(-0.8, 0.8, (LD, B, H)) if c["with_h0"] else np.zeros((LD, B, H))
    grad_out = rng.standard_normal((T, B, D * H))
    grad_h_n = rng.standard_normal((LD, B, H))
    lengths = c["lengths"] or [T] * B
    params = {name: p.astype(np.float64) for name, p in gru.parameters()}
    # the reference sees the weights and inputs rounded as the library does
    def cast(a):
        return a.astype(c["dtype"]).astype(np.float64)
    ref = reference.stack(params, c["num_layers"], c["bidirectional"], c["reset_after"],
                          cast(x), cast(h0), lengths, cast(grad_out), cast(grad_h_n))

    to_user = (lambda a: a.transpose(1, 0, 2)) if c["batch_first"] else (lambda a: a)
    out, h_n = gru.forward(to_user(x), h0 if c["with_h0"] else None, lengths=c["lengths"],
                           train=True)
    mask = np.arange(T)[:, None] < np.asarray(lengths)[None, :]  # padded outputs: zero, no grad
    dx, dh0 = gru.backward(to_user(grad_out * mask[..., None]), grad_h_n)
    dtype, factor = c["dtype"], 5  # a few more steps of rounding than the fixed-shape tests
    assert_close(to_user(out), ref[0], dtype, "out", factor)
    assert_close(h_n, ref[1], dtype, "h_n", factor)
    assert_close(to_user(dx), ref[2], dtype, "dx", factor)
    if c["with_h0"]:
        assert_close(dh0, ref[3], dtype, "dh0", factor)
    for name, expected in ref[4].items():
        assert_close(gru.grads[name], expected, dtype, name, factor)
