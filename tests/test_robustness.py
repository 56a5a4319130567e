"""Hardening: extreme values, long sequences, memory exhaustion, and threads sharing models."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import eigengru

from .conftest import assert_close, random_case, reference_run


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_saturated_gates_stay_finite(rng, dtype, reset_after):
    """Pre-activations of |a| >= 1e4 saturate sigmoid and tanh; nothing overflows to NaN/Inf."""
    gru = eigengru.GRU(3, 6, num_layers=2, reset_after=reset_after, dtype=dtype)
    for name, p in gru.parameters():
        setattr(gru, name, rng.choice([-1.0, 1.0], p.shape) * 1e4)
    x = rng.standard_normal((20, 4, 3)) * 10
    out, h_n = gru.forward(x, train=True)
    dx, dh0 = gru.backward(np.ones_like(out), np.ones_like(h_n))
    for what, a in [("out", out), ("h_n", h_n), ("dx", dx), ("dh0", dh0), *list(gru.grads.items())]:
        assert np.all(np.isfinite(a)), what
    assert np.abs(out).max() <= 1.0


def test_ten_thousand_steps_stay_finite_and_accurate(rng):
    gru64, x, h0 = random_case(rng, 10_000, 2, 3, 16, dtype=np.float64)
    gru32 = eigengru.GRU(3, 16)
    gru32.load_state_dict(gru64.state_dict())
    grad_out = rng.standard_normal((10_000, 2, 16))
    results = []
    for gru in (gru64, gru32):
        out, _ = gru.forward(x, h0, train=True)
        dx, _ = gru.backward(grad_out)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
        assert all(np.all(np.isfinite(g)) for g in gru.grads.values())
        results.append((out, dx))
    assert_close(results[1][0], results[0][0], np.float32, "out", factor=10)
    assert_close(results[1][1], results[0][1], np.float32, "dx", factor=10)


def test_nan_and_inf_propagate_without_crashing(rng):
    gru, x, h0 = random_case(rng, 5, 3, 4, 6)
    x[2, 1, 0] = np.nan
    out, _ = gru(x, h0)
    assert np.isnan(out[2:, 1]).all()  # the poisoned row, from that step on
    assert np.isfinite(out[:, 0]).all() and np.isfinite(out[:, 2]).all()  # the others untouched
    gru.weight_hh_l0[0, 0] = np.inf
    out, _ = gru.forward(x, h0, train=True)
    gru.backward(np.ones_like(out))  # no crash; values may be NaN, as IEEE arithmetic says


def test_memory_exhaustion_raises_memory_error_and_the_process_lives_on():
    with pytest.raises(MemoryError):
        eigengru.GRU(10, 200_000)  # 3H x H weights: 480 GB
    gru = eigengru.GRU(1, 8)
    with pytest.raises(MemoryError):
        gru(np.broadcast_to(np.zeros(1, np.float32), (10**10, 1, 1)))
    out, _ = gru(np.zeros((3, 2, 1)))  # and the library still works
    assert out.shape == (3, 2, 8)


def test_threads_share_one_model_for_inference(rng):
    gru, x, h0 = random_case(rng, 50, 8, 5, 32)
    expected, _ = gru(x, h0)
    results, errors = [None] * 6, []

    def infer(k):
        try:
            for _ in range(5):
                results[k] = gru(x, h0)[0]
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=infer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_threads_train_separate_models_at_once(rng):
    cases = [random_case(rng, 30, 4, 3, 16, seed=k) for k in range(4)]
    grad_out = rng.standard_normal((30, 4, 16))
    expected = [reference_run(g, x, h0, grad_out, np.zeros((4, 16)))[2] for g, x, h0 in cases]
    results = [None] * 4

    def train(k):
        gru, x, h0 = cases[k]
        for _ in range(3):
            gru.forward(x, h0, train=True)
            results[k] = gru.backward(grad_out)[0]

    threads = [threading.Thread(target=train, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert_close(results[k], expected[k], np.float64, f"dx of model {k}")


def test_float16_input_is_converted(rng):
    gru, x, h0 = random_case(rng, 4, 2, 3, 5)
    half = x.astype(np.float16)
    np.testing.assert_array_equal(gru(half, h0)[0], gru(half.astype(np.float64), h0)[0])
