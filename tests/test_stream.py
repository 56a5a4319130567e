"""GRU.stream(): one time step per call gives the sequence forward's outputs and states."""

from __future__ import annotations

import numpy as np
import pytest

import eigengru

from . import reference
from .conftest import assert_close

T, I, H = 9, 5, 7


def model(rng, reset_after, dtype, layers=2, bias=True):
    gru = eigengru.GRU(I, H, num_layers=layers, reset_after=reset_after, bias=bias, dtype=dtype,
                       seed=3)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.7, 0.7, p.shape))
    return gru


@pytest.fixture
def one_thread(threads):
    eigengru.set_num_threads(1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("batch", [1, 2, 3, 5, 8, 9])
def test_steps_give_the_sequence_forward_bit_for_bit(rng, dtype, reset_after, batch,
                                                     one_thread):
    gru = model(rng, reset_after, dtype, bias=batch % 2 == 1)
    steps = 60  # past the sequence forward's chunk of input projections
    x = rng.standard_normal((steps, batch, I)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (2, batch, H)).astype(dtype)
    expected, h_n = gru(x, h0)
    stream = gru.stream(batch)
    stream.state = h0
    outs = np.stack([stream.step(x[t]).copy() for t in range(steps)])
    assert outs.dtype == dtype and outs.shape == expected.shape
    assert np.array_equal(outs, expected) and np.array_equal(stream.state, h_n)
    ref_out, *_ = reference.stack(dict(gru.parameters()), 2, False, reset_after,
                                  x.astype(np.float64), h0.astype(np.float64), [steps] * batch,
                                  np.zeros((steps, batch, H)), np.zeros((2, batch, H)))
    assert_close(outs, ref_out, dtype, "out against the NumPy reference", factor=10)
    # reset() starts over: the same steps give the same numbers, bit for bit
    stream.reset()
    assert np.array_equal(stream.state, np.zeros((2, batch, H), dtype))
    first = [stream.step(x[t]).copy() for t in range(T)]
    stream.reset()
    assert all(np.array_equal(stream.step(x[t]), first[t]) for t in range(T))
    assert all(np.array_equal(first[t], gru(x[:T])[0][t]) for t in range(T))


def test_unbatched_steps_and_out_arrays(rng):
    gru = model(rng, True, np.float32, layers=1)
    x = rng.standard_normal((T, I)).astype(np.float32)
    expected, _ = gru(x)
    stream = gru.stream()
    out = np.empty(H, np.float32)
    for t in range(T):
        result = stream.step(x[t].astype(np.float64), out=out)  # converted, written into out
        assert result is out and result.shape == (H,)
        assert_close(out, expected[t], np.float32, f"step {t}")
    row = np.empty((1, H), np.float32)
    assert stream.step(x[0][None], out=row) is row


def test_the_stream_keeps_the_weights_it_was_made_with(rng):
    gru = model(rng, True, np.float64)
    stream = gru.stream()
    x = rng.standard_normal((1, I))
    before = stream.step(x).copy()
    gru.weight_hh_l0 = np.zeros((3 * H, H))
    gru.weight_ih_l1 *= 2
    stream.reset()
    assert np.array_equal(stream.step(x), before)
    assert not np.allclose(gru.stream().step(x), before)


def test_bad_calls_are_refused_and_change_nothing(rng):
    gru = model(rng, True, np.float32)
    with pytest.raises(ValueError, match="bidirectional GRU cannot run step by step"):
        eigengru.GRU(I, H, bidirectional=True).stream()
    with pytest.raises(ValueError, match="batch: expected a positive integer"):
        gru.stream(0)
    stream = gru.stream(2)
    stream.step(rng.standard_normal((2, I)))
    state = stream.state
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, input_size\) = \(2, 5\), "
                                         r"got \(5,\)"):
        stream.step(np.ones(I))
    with pytest.raises(ValueError, match=r"x: expected shape .* got \(2, 4\)"):
        stream.step(np.ones((2, 4)))
    with pytest.raises(TypeError, match="x: expected a real floating-point or integer array"):
        stream.step(np.ones((2, I), dtype=complex))
    with pytest.raises(ValueError, match=r"out: expected a writable C-contiguous float32 array "
                                         r"of shape \(2, 7\)"):
        stream.step(np.ones((2, I), np.float32), out=np.empty((2, H)))
    with pytest.raises(ValueError, match=r"state: expected shape \(num_layers, batch, "
                                         r"hidden_size\) = \(2, 2, 7\)"):
        stream.state = np.zeros((2, 1, H))
    assert np.array_equal(stream.state, state)
