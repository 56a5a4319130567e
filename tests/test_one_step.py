"""One-step inference calls of eigengru.GRU (sampling and control loops) run packed C++ cells:
the numbers of a training forward over the same step bit for bit, at any thread count, in every
layout, and the weights packed again after every change the documentation names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import eigengru
import eigengru.optim

from . import reference
from .conftest import assert_close

I, H = 6, 8


@pytest.fixture(params=[1, 2, 4], ids=["1thread", "2threads", "4threads"])
def thread_count(request, threads):
    """1, 2 or 4 threads (4: a layer's directions side by side); a one-step call matches the
    sequence forward every time."""
    eigengru.set_num_threads(request.param)
    return request.param


def model(rng, dtype=np.float64, **kwargs):
    gru = eigengru.GRU(I, H, dtype=dtype, seed=2, **kwargs)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.7, 0.7, p.shape))
    return gru


def one_step_input(rng, batch, batch_first, stacked):
    if batch is None:
        return rng.standard_normal((1, I)), rng.standard_normal((stacked, H))
    x = rng.standard_normal((batch, 1, I) if batch_first else (1, batch, I))
    return x, rng.standard_normal((stacked, batch, H))


@pytest.mark.parametrize("dtype, reset_after, bidirectional, batch_first, layers", list(
    itertools.product([np.float32, np.float64], [True, False], [False, True], [False, True],
                      [1, 2])))
def test_one_step_is_the_sequence_forward_bit_for_bit(rng, thread_count, dtype, reset_after,
                                                      bidirectional, batch_first, layers):
    gru = model(rng, dtype, reset_after=reset_after, bidirectional=bidirectional,
                batch_first=batch_first, num_layers=layers)
    stacked = layers * (2 if bidirectional else 1)
    for batch in (None, 1, 3, 8):
        x, h0 = one_step_input(rng, batch, batch_first, stacked)
        out, h_n = gru(x, h0)
        assert gru._stack_step is not None  # the packed cells ran
        sequence_out, sequence_h_n = gru.forward(x, h0, train=True)  # the sequence forward
        assert out.shape == sequence_out.shape and h_n.shape == sequence_h_n.shape
        assert out.dtype == dtype and h_n.dtype == dtype
        assert np.array_equal(out, sequence_out) and np.array_equal(h_n, sequence_h_n)
        # and both are right: the NumPy reference in float64
        rows = 1 if batch is None else batch
        xs = x.reshape(1, rows, I) if batch is None or not batch_first else x.transpose(1, 0, 2)
        h0s = h0.reshape(stacked, rows, H)
        ref_out, ref_h_n, *_ = reference.stack(
            dict(gru.parameters()), layers, bidirectional, reset_after, xs, h0s, [1] * rows,
            np.zeros((1, rows, stacked // layers * H)), np.zeros((stacked, rows, H)))
        got = out.reshape(1, rows, -1) if batch is None or not batch_first else \
            out.transpose(1, 0, 2)
        assert_close(got, ref_out, dtype, "out")
        assert_close(h_n.reshape(stacked, rows, H), ref_h_n, dtype, "h_n")


def test_a_step_loops_call_goes_straight_to_the_core(rng, monkeypatch):
    """One step of a batch as a loop passes it, x and h0 C-contiguous arrays of the model's
    dtype and shapes, in either layout: the packed stack runs with no conversion or check in
    Python (the general path's checker is never called). Any other call takes the general
    path, with the same numbers."""
    checked = []
    check = eigengru.gru.sequence_inputs
    monkeypatch.setattr(eigengru.gru, "sequence_inputs",
                        lambda *args: checked.append("x") or check(*args))
    for batch_first in (False, True):
        gru = model(rng, np.float32, num_layers=2, batch_first=batch_first)
        x, h0 = (a.astype(np.float32) for a in one_step_input(rng, 3, batch_first, 2))
        checked.clear()
        expected = gru(x.astype(np.float64), h0)  # converted: the general path
        assert len(checked) == 1
        checked.clear()
        for got in (gru(x, h0), gru.forward(x, h0)):
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert checked == []
        for x_other, h_other in ((x, h0.astype(np.float64)), (x.tolist(), h0),
                                 (np.asfortranarray(x), h0), (x, np.asfortranarray(h0))):
            checked.clear()
            got = gru(x_other, h_other)
            assert len(checked) == 1
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        checked.clear()
        no_state = gru(x)
        assert checked == []
        zeros = gru(x, np.zeros_like(h0))
        assert np.array_equal(no_state[0], zeros[0]) and np.array_equal(no_state[1], zeros[1])
        sequence = np.concatenate([x, x], axis=1 if batch_first else 0)  # two steps: general
        gru(sequence, h0)
        assert len(checked) == 1
        with pytest.raises(ValueError, match=r"h0: expected shape \(num_layers \* directions, "
                                             r"batch, hidden_size\)"):
            gru(x, h0[:1])  # the core refuses it; Python explains


def test_no_state_means_zeros_and_outputs_are_not_views(rng, thread_count):
    gru = model(rng, num_layers=2)
    x = rng.standard_normal((1, 4, I))
    out, h_n = gru(x)
    expected, expected_h_n = gru(x, np.zeros((2, 4, H)))
    assert np.array_equal(out, expected) and np.array_equal(h_n, expected_h_n)
    out[...] = 7.0  # the caller's arrays: editing one leaves the other alone
    assert not np.any(h_n == 7.0)


def test_every_documented_change_reaches_the_next_one_step_call(rng, thread_count):
    gru = model(rng)
    x, h0 = rng.standard_normal((1, 2, I)), rng.standard_normal((1, 2, H))

    def sequence_forward():
        return gru.forward(x, h0, train=True)[0]  # reads the parameters as they are now

    assert np.array_equal(gru(x, h0)[0], sequence_forward())
    gru.weight_hh_l0 = gru.weight_hh_l0 * 0.5  # assignment
    assert np.array_equal(gru(x, h0)[0], sequence_forward())
    gru.bias_ih_l0 += 0.25  # augmented assignment goes through the attribute too
    assert np.array_equal(gru(x, h0)[0], sequence_forward())
    gru.load_state_dict({k: v * 1.5 for k, v in gru.state_dict().items()})
    assert np.array_equal(gru(x, h0)[0], sequence_forward())
    # training: forward, backward, an optimiser's in-place update, then a one-step call
    optimiser = eigengru.optim.Adam(gru.parameters(), lr=0.1)
    before = gru(x, h0)[0]
    out, _ = gru.forward(x, h0, train=True)
    gru.backward(np.ones_like(out))
    optimiser.step(gru.grads)
    after = gru(x, h0)[0]
    assert not np.array_equal(after, before)
    assert np.array_equal(after, sequence_forward())
    # an element edited in place outside training: repack() makes it count
    gru.weight_ih_l0[0, 0] += 1.0
    gru.repack()
    assert np.array_equal(gru(x, h0)[0], sequence_forward())


def test_copies_pack_their_own_cells(rng):
    import copy
    import pickle

    gru = model(rng)
    x = rng.standard_normal((1, 3, I))
    out = gru(x)[0]
    for twin in (copy.deepcopy(gru), pickle.loads(pickle.dumps(gru))):
        assert twin._stack_step is None
        assert np.array_equal(twin(x)[0], out)
        twin.weight_ih_l0 = twin.weight_ih_l0 * 2.0
        assert not np.array_equal(twin(x)[0], out)
    assert np.array_equal(gru(x)[0], out)
