"""eigengru.GRUCell: one step per call, and backpropagation through a Python loop of steps,
against the NumPy reference run over the same sequence."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import eigengru
import eigengru.optim

from . import reference
from .conftest import assert_close

T, B, I, H = 12, 3, 4, 6


def random_cell(rng, dtype, reset_after, bias=True):
    cell = eigengru.GRUCell(I, H, bias=bias, reset_after=reset_after, dtype=dtype, seed=1)
    for name, p in cell.parameters():
        setattr(cell, name, rng.uniform(-0.6, 0.6, p.shape))
    return cell


def reference_run(cell, xs, h0, grad_out):
    params = {f"{name}_l0": p for name, p in cell.parameters()}
    weights = reference.weights_of(params, H)
    out, _h_n, saved = reference.forward(weights, xs.astype(np.float64), h0.astype(np.float64),
                                        cell.reset_after)
    dx, dh0, g = reference.backward(weights, saved, grad_out.astype(np.float64),
                                    np.zeros_like(h0, dtype=np.float64), cell.reset_after)
    return out, dx, dh0, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_backpropagation_through_a_python_loop(rng, dtype, reset_after, bias):
    cell = random_cell(rng, dtype, reset_after, bias)
    xs = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (B, H)).astype(dtype)
    grad_out = rng.standard_normal((T, B, H)).astype(dtype)
    expected_out, expected_dx, expected_dh0, expected_g = reference_run(cell, xs, h0, grad_out)

    h, outs = h0, []
    for t in range(T):
        h = cell.forward(xs[t], h, train=True)
        outs.append(h)
    assert cell.saved_steps == T
    assert_close(np.stack(outs), expected_out, dtype, "out")
    dh, dxs = np.zeros_like(h0), [None] * T
    for t in reversed(range(T)):  # the loop's own backward: last step first
        dxs[t], dh = cell.backward(grad_out[t] + dh)
    assert cell.saved_steps == 0
    assert_close(np.stack(dxs), expected_dx, dtype, "dx")
    assert_close(dh, expected_dh0, dtype, "dh0")
    for short, name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                        ("b_hh", "bias_hh")):
        if name in cell.grads:
            assert_close(cell.grads[name], expected_g[short], dtype, name)
    assert_close(cell(xs[0], h0), expected_out[0], dtype, "inference step")


def test_unbatched_steps_and_zero_state(rng):
    cell = random_cell(rng, np.float64, True)
    x = rng.standard_normal(I)
    h1 = cell.forward(x, train=True)
    assert h1.shape == (H,)
    assert np.array_equal(h1, cell(x[None], np.zeros((1, H)))[0])
    dx, dh = cell.backward(np.ones(H))
    assert dx.shape == (I,) and dh.shape == (H,)


def test_an_optimiser_step_reaches_the_next_forward(rng):
    """The weights are packed once per training iteration: an in-place update after backward
    (as eigengru.optim.Adam makes) is in the next forward."""
    cell = random_cell(rng, np.float64, True)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    cell.forward(x, h, train=True)
    cell.backward(np.ones((B, H)))
    optimizer = eigengru.optim.Adam(dict(cell.parameters()), lr=0.1)
    optimizer.step(cell.grads)
    fresh = eigengru.GRUCell(I, H, dtype=np.float64)
    fresh.load_state_dict(cell.state_dict())
    assert np.array_equal(cell(x, h), fresh(x, h))
    cell.weight_hh *= 0.5  # in place, outside training: repack() says so
    cell.repack()
    fresh.weight_hh = cell.weight_hh
    assert np.array_equal(cell(x, h), fresh(x, h))


def test_copies_and_refusals(rng):
    cell = random_cell(rng, np.float32, False)
    x = rng.standard_normal((B, I))
    cell.forward(x, train=True)
    twin = pickle.loads(pickle.dumps(cell))
    assert twin.saved_steps == 0 and np.array_equal(twin(x), cell(x))
    deep = copy.deepcopy(cell)
    deep.weight_ih = np.zeros((3 * H, I))
    assert not np.array_equal(deep(x), cell(x))
    with pytest.raises(RuntimeError, match="no training step to differentiate"):
        twin.backward(np.ones((B, H)))
    with pytest.raises(ValueError, match=r"grad_h_next: expected shape the step's output shape"):
        cell.backward(np.ones((B + 1, H)))
    assert cell.saved_steps == 1  # the failed call kept the step
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, input_size\) or "
                                         r"\(input_size,\) with input_size = 4"):
        cell(np.ones((B, I + 1)))
    with pytest.raises(ValueError, match=r"h: expected shape \(batch, hidden_size\)"):
        cell(x, np.ones((B, H + 1)))
    with pytest.raises(ValueError, match=r"weight_hh: expected shape \(18, 6\)"):
        cell.weight_hh = np.ones((3 * H, H + 1))
    assert repr(cell) == "GRUCell(4, 6, reset_after=False, dtype=float32)"


def test_a_step_loops_call_goes_straight_to_the_core(rng, monkeypatch):
    """x (B, I) and h (B, H), C-contiguous arrays of the cell's dtype, as a loop passes them:
    the packed cell runs with no conversion or check in Python (the general path's converter is
    never called). Any other call takes the general path, with the same numbers."""
    cell = random_cell(rng, np.float32, True)
    x = rng.standard_normal((B, I)).astype(np.float32)
    h = rng.uniform(-0.8, 0.8, (B, H)).astype(np.float32)
    expected = cell(x.astype(np.float64), h)  # converted: the general path
    assert_close(expected, reference_run(cell, x[None], h, np.zeros((1, B, H)))[0][0],
                 np.float32, "out")
    converted = []
    convert = eigengru.cell.real_array
    monkeypatch.setattr(eigengru.cell, "real_array",
                        lambda value, name, dtype: converted.append(name) or
                        convert(value, name, dtype))
    assert np.array_equal(cell(x, h), expected) and converted == []
    assert np.array_equal(cell.forward(x, h), expected) and converted == []
    for x_other, h_other in ((x.astype(np.float64), h), (x, h.astype(np.float64)),
                             (np.asfortranarray(x), h), (x, np.asfortranarray(h)),
                             (x.tolist(), h), (x[0], h[0])):
        converted.clear()
        got = cell(x_other, h_other)
        assert converted[0] == "x"
        assert np.array_equal(got, expected if got.ndim == 2 else expected[0])
    converted.clear()
    assert np.array_equal(cell(x), cell(x, np.zeros((B, H), np.float32)))  # no state: zeros
    assert converted == ["x"]
    with pytest.raises(ValueError, match=r"h: expected shape \(batch, hidden_size\)"):
        cell(x, np.ones((B, H + 1), np.float32))  # the core refuses it; Python explains
