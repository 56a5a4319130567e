"""eigengru.GRU survives pickle and copy: equal, independent, its gradients with it."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import eigengru

T, B, I, H = 5, 3, 4, 6

NUMPY_TRIPS = {"pickle": lambda m: pickle.loads(pickle.dumps(m)), "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("trip", NUMPY_TRIPS)
def test_numpy_gru_round_trip(trip, rng):
    gru = eigengru.GRU(I, H, num_layers=2, bidirectional=True, dropout=0.3, reset_after=False,
                       batch_first=True, dtype=np.float64, seed=5)
    x = rng.standard_normal((B, T, I))
    out, _ = gru.forward(x, train=True)
    gru.backward(rng.standard_normal(out.shape))  # accumulated gradients travel too
    gru.forward(x, train=True)  # a pending forward does not: the copy has none
    copied = NUMPY_TRIPS[trip](gru)
    assert copied.config() == gru.config()
    for name, p in gru.parameters():
        assert np.array_equal(getattr(copied, name), p) and getattr(copied, name) is not p
        assert np.array_equal(copied.grads[name], gru.grads[name])
    assert np.array_equal(copied(x)[0], gru(x)[0])
    with pytest.raises(RuntimeError, match="no training forward"):
        copied.backward(out)
    # The copy's generator continues where the original's was: the same dropout masks.
    grad = rng.standard_normal(out.shape)
    gru.backward(grad)  # consume the original's pending forward
    a, _ = gru.forward(x, train=True)
    b, _ = copied.forward(x, train=True)
    assert np.array_equal(a, b)
    # Independent: the copy's training leaves the original's parameters and gradients alone.
    before = {name: (p.copy(), gru.grads[name].copy()) for name, p in gru.parameters()}
    copied.backward(grad)
    copied.weight_hh_l0 *= 2
    for name, p in gru.parameters():
        assert np.array_equal(p, before[name][0]) and np.array_equal(gru.grads[name],
                                                                     before[name][1]), name


def test_numpy_gru_shallow_copy_has_its_own_parameter_table():
    gru = eigengru.GRU(I, H, seed=1)
    twin = copy.copy(gru)
    assert twin.weight_ih_l0 is gru.weight_ih_l0  # arrays shared, as in any shallow copy
    twin.weight_ih_l0 = np.zeros((3 * H, I))  # but replacing one replaces it in the copy only
    assert not np.array_equal(gru.weight_ih_l0, twin.weight_ih_l0)
