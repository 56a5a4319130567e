"""The NumPy API: construction, parameters, gradients bookkeeping, argument errors, threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import eigengru

from .conftest import assert_close, random_case, reference_run


def snapshot(gru):
    return ({name: p.copy() for name, p in gru.parameters()},
            {k: g.copy() for k, g in gru.grads.items()})


def assert_unchanged(gru, before):
    params, grads = before
    for name, p in gru.parameters():
        np.testing.assert_array_equal(p, params[name])
    for name, g in gru.grads.items():
        np.testing.assert_array_equal(g, grads[name])


def test_parameters_have_pytorch_names_shapes_and_init():
    gru = eigengru.GRU(5, 8, seed=3)
    shapes = {name: p.shape for name, p in gru.parameters()}
    assert shapes == {"weight_ih_l0": (24, 5), "weight_hh_l0": (24, 8),
                      "bias_ih_l0": (24,), "bias_hh_l0": (24,)}
    bound = 1 / np.sqrt(8)
    for name, p in gru.parameters():
        assert p.dtype == np.float32
        assert np.all(np.abs(p) <= bound) and np.abs(p).max() > 0.5 * bound, name
    np.testing.assert_array_equal(eigengru.GRU(5, 8, seed=3).weight_hh_l0, gru.weight_hh_l0)
    assert not np.array_equal(eigengru.GRU(5, 8, seed=4).weight_hh_l0, gru.weight_hh_l0)
    assert [name for name, _ in eigengru.GRU(5, 8, bias=False).parameters()] == [
        "weight_ih_l0", "weight_hh_l0"]


def test_assigning_a_parameter_replaces_it_and_checks_its_shape(rng):
    gru = eigengru.GRU(3, 4, dtype=np.float64)
    new = rng.standard_normal((12, 4))
    gru.weight_hh_l0 = new
    np.testing.assert_array_equal(gru.weight_hh_l0, new)
    new[0, 0] = 99.0  # the model holds its own copy
    assert gru.weight_hh_l0[0, 0] != 99.0
    before = snapshot(gru)
    with pytest.raises(ValueError,
                       match=r"weight_hh_l0: expected shape .*\(12, 4\), got \(4, 12\)"):
        gru.weight_hh_l0 = new.T
    with pytest.raises(ValueError, match=r"bias_ih_l0: expected shape .*\(12,\)"):
        gru.bias_ih_l0 = np.zeros(11)
    with pytest.raises(TypeError, match="weight_ih_l0: expected a real"):
        gru.weight_ih_l0 = np.zeros((12, 3), dtype=complex)
    assert_unchanged(gru, before)
    with pytest.raises(AttributeError, match="hidden_size is fixed"):
        gru.hidden_size = 5


def test_editing_a_parameter_in_place_changes_the_model(rng):
    gru, x, h0 = random_case(rng, 3, 2, 4, 5)
    out_before, _ = gru(x, h0)
    gru.weight_hh_l0 *= 0.5
    out_after, _ = gru(x, h0)
    assert not np.allclose(out_before, out_after)
    ref_out, *_ = reference_run(gru, x, h0, np.zeros((3, 2, 5)), np.zeros((2, 5)))
    assert_close(out_after, ref_out, np.float64, "out after an in-place edit")


@pytest.mark.parametrize("bad, error, message", [
    (dict(input_size=0), ValueError, "input_size: expected a positive integer, got 0"),
    (dict(hidden_size=2.5), TypeError, "hidden_size: expected a positive integer"),
    (dict(hidden_size=True), TypeError, "hidden_size: expected a positive integer"),
    (dict(dtype=np.float16), TypeError, "dtype: expected float32 or float64, got float16"),
    (dict(dtype="int32"), TypeError, "dtype: expected float32 or float64"),
])
def test_constructor_rejects_bad_arguments(bad, error, message):
    arguments = dict(input_size=3, hidden_size=4) | bad
    with pytest.raises(error, match=message):
        eigengru.GRU(**arguments)


def test_gradients_accumulate_until_zero_grad(rng):
    gru, x, h0 = random_case(rng, 4, 3, 2, 5)
    grad_out = rng.standard_normal((4, 3, 5))
    gru.forward(x, h0, train=True)
    gru.backward(grad_out)
    once = {k: g.copy() for k, g in gru.grads.items()}
    gru.forward(x, h0, train=True)
    gru.backward(grad_out)
    for name, g in gru.grads.items():
        assert_close(g, 2 * once[name], np.float64, name)
    gru.zero_grad()
    assert all(not g.any() for g in gru.grads.values())


def test_backward_gives_the_gradient_of_the_forward_that_ran(rng):
    gru, x, h0 = random_case(rng, 4, 3, 2, 5)
    grad_out = rng.standard_normal((4, 3, 5))
    _, _, ref_dx, _, _ = reference_run(gru, x, h0, grad_out, np.zeros((3, 5)))
    gru.forward(x, h0, train=True)
    gru.weight_hh_l0 = np.zeros((15, 5))  # replaced after the forward: does not matter
    x[:] = 0  # nor does reusing the input buffer
    dx, _ = gru.backward(grad_out)
    assert_close(dx, ref_dx, np.float64, "dx")


def test_backward_errors_leave_everything_unchanged(rng):
    gru, x, h0 = random_case(rng, 4, 3, 2, 5)
    with pytest.raises(RuntimeError, match=r"call forward\(x, train=True\) first"):
        gru.backward(np.ones((4, 3, 5)))
    gru(x, h0)  # inference keeps nothing to differentiate
    with pytest.raises(RuntimeError, match="no training forward"):
        gru.backward(np.ones((4, 3, 5)))
    gru.forward(x, h0, train=True)
    before = snapshot(gru)
    with pytest.raises(ValueError,
                       match=r"grad_out: expected shape .* = \(4, 3, 5\), got \(4, 3, 4\)"):
        gru.backward(np.ones((4, 3, 4)))
    with pytest.raises(ValueError, match=r"grad_h_n: expected shape .* = \(1, 3, 5\)"):
        gru.backward(np.ones((4, 3, 5)), np.ones((3, 5)))
    assert_unchanged(gru, before)
    gru.backward(np.ones((4, 3, 5)))  # the forward is still there to differentiate
    with pytest.raises(RuntimeError, match="each forward allows one backward"):
        gru.backward(np.ones((4, 3, 5)))


def test_forward_argument_errors(rng):
    gru = eigengru.GRU(3, 4)
    with pytest.raises(ValueError, match=r"x: expected shape \(steps, batch, input_size\) or "
                                         r"\(steps, input_size\) with input_size = 3, got "
                                         r"\(5, 2, 4\)"):
        gru(np.ones((5, 2, 4)))
    with pytest.raises(ValueError, match=r"x: expected shape"):
        gru(np.ones((5, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"h0: expected shape \(num_layers \* directions, batch, "
                                         r"hidden_size\) = \(1, 2, 4\), got \(2, 4\)"):
        gru(np.ones((5, 2, 3)), np.ones((2, 4)))
    for bad in (np.ones((2, 2, 3), dtype=bool), np.ones((2, 2, 3), dtype=complex),
                np.array([[["a"] * 3] * 2] * 2), np.empty((2, 2, 3), dtype=object)):
        with pytest.raises(TypeError, match="x: expected a real floating-point or integer array"):
            gru(bad)


def test_any_real_array_layout_gives_the_same_result(rng):
    gru, x, h0 = random_case(rng, 6, 4, 5, 7)
    expected, _ = gru(x, h0)
    fortran = np.asfortranarray(x)
    strided = np.repeat(x, 2, axis=1)[:, ::2]
    reversed_twice = x[::-1][::-1]
    readonly = x.copy()
    readonly.flags.writeable = False
    for variant in (fortran, strided, reversed_twice, readonly, x.astype(np.float32)):
        out, _ = gru(variant, h0)
        assert_close(out, expected, np.float32 if variant.dtype == np.float32 else np.float64,
                     "layout")
    integers = rng.integers(-2, 3, (6, 4, 5))
    np.testing.assert_array_equal(gru(integers, h0)[0], gru(integers.astype(np.float64), h0)[0])


def test_empty_sequences_and_batches():
    gru = eigengru.GRU(3, 4, dtype=np.float64, seed=0)
    h0 = np.full((1, 2, 4), 0.5)
    out, h_n = gru(np.ones((0, 2, 3)), h0)
    assert out.shape == (0, 2, 4)
    np.testing.assert_array_equal(h_n, h0)
    out, h_n = gru(np.ones((3, 0, 3)))
    assert out.shape == (3, 0, 4) and h_n.shape == (1, 0, 4)
    gru.forward(np.ones((0, 2, 3)), h0, train=True)
    dx, dh0 = gru.backward(None, np.ones((1, 2, 4)))
    assert dx.shape == (0, 2, 3)
    np.testing.assert_array_equal(dh0, np.ones((1, 2, 4)))


def test_the_compute_releases_the_gil(rng):
    """While one thread is inside a long C++ call, another keeps running Python code."""
    gru = eigengru.GRU(64, 256, seed=0)
    x = rng.standard_normal((2000, 2, 64)).astype(np.float32)
    gru(x[:10])
    worker = threading.Thread(target=gru, args=(x,))
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    gaps = np.diff(ticks)
    assert len(ticks) > 1000 and gaps.max() < 0.5 * (ticks[-1] - ticks[0])


def test_import_does_not_need_torch():
    code = "import sys, eigengru; assert 'torch' not in sys.modules; print(eigengru.__version__)"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == eigengru.__version__
