"""Results are bitwise repeatable at a fixed thread count and agree across thread counts."""

from __future__ import annotations

import numpy as np
import pytest

import eigengru

from .conftest import assert_close, random_case


@pytest.fixture
def threads():
    before = eigengru.get_num_threads()
    yield
    eigengru.set_num_threads(before)


def run(gru, x, h0, grad_out):
    gru.zero_grad()
    out, h_n = gru.forward(x, h0, train=True)
    dx, dh0 = gru.backward(grad_out)
    return [out, h_n, dx, dh0] + [g.copy() for g in gru.grads.values()]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_bitwise_identical_run_to_run(rng, threads, reset_after, dtype):
    eigengru.set_num_threads(2)
    gru, x, h0 = random_case(rng, 15, 9, 12, 40, reset_after=reset_after, dtype=dtype)
    grad_out = rng.standard_normal((15, 9, 40)).astype(dtype)
    first = run(gru, x, h0, grad_out)
    for _ in range(3):
        for a, b in zip(first, run(gru, x, h0, grad_out)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_and_two_threads_agree(rng, threads, reset_after, dtype):
    gru, x, h0 = random_case(rng, 15, 9, 12, 40, reset_after=reset_after, dtype=dtype)
    grad_out = rng.standard_normal((15, 9, 40)).astype(dtype)
    eigengru.set_num_threads(1)
    one = run(gru, x, h0, grad_out)
    eigengru.set_num_threads(2)
    two = run(gru, x, h0, grad_out)
    for index, (a, b) in enumerate(zip(one, two)):
        assert_close(b, a, dtype, f"result {index}")


def test_thread_count_is_settable(threads):
    eigengru.set_num_threads(3)
    assert eigengru.get_num_threads() == 3
    with pytest.raises(ValueError, match="set_num_threads: n: expected a positive integer, got 0"):
        eigengru.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads: n: expected a positive integer"):
        eigengru.set_num_threads(1.5)
    assert eigengru.get_num_threads() == 3
