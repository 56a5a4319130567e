from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import eigengru

from . import reference

# Tolerance on the norm-wise relative error max|actual - expected| / max|expected|.
TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}

GRAD_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
              "b_hh": "bias_hh_l0"}


def assert_close(actual, expected, dtype, what, factor=1.0):
    """Compare to a float64 reference with the dtype's tolerance, relative to the largest value."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = max(np.abs(expected).max(initial=0.0), 1e-30)
    error = np.abs(actual - expected).max(initial=0.0) / scale
    assert error <= TOLERANCE[np.dtype(dtype)] * factor, f"{what}: relative error {error:.3g}"


def assert_stack_training_is(gru, got, want, dtype):
    """got: (out, h_n, dx, dh0) of a training forward and its backward, whose parameter
    gradients are in gru.grads; want: reference.stack's (out, h_n, dx, dh0, grads by name)."""
    for name, actual, expected in zip(("out", "h_n", "dx", "dh0"), got, want):
        assert_close(actual, expected, dtype, name)
    for name, grad in want[4].items():
        assert_close(gru.grads[name], grad, dtype, name)


@pytest.fixture
def threads():
    """Restores eigengru's thread count after a test that sets its own."""
    before = eigengru.get_num_threads()
    yield
    eigengru.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_case(rng, steps, batch, input_size, hidden_size, *, bias=True, reset_after=True,
                dtype=np.float64, seed=0, with_h0=True):
    """A GRU with random weights (biases random too, not PyTorch's zero-free init only) and
    inputs."""
    gru = eigengru.GRU(input_size, hidden_size, bias=bias, reset_after=reset_after, dtype=dtype,
                       seed=seed)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.6, 0.6, p.shape))
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (1, batch, hidden_size)).astype(dtype) if with_h0 else None
    return gru, x, h0


def reference_run(gru, x, h0, grad_out, grad_h_n):
    """Forward and backward of the NumPy reference in float64 on the model's (rounded) weights."""
    w = reference.weights_of(dict(gru.parameters()), gru.hidden_size)
    x64 = x.astype(np.float64)
    batch = x.shape[1]
    h0_64 = np.zeros((batch, gru.hidden_size)) if h0 is None else h0[0].astype(np.float64)
    out, h_n, saved = reference.forward(w, x64, h0_64, gru.reset_after)
    dx, dh0, g = reference.backward(w, saved, grad_out.astype(np.float64),
                                    grad_h_n.astype(np.float64), gru.reset_after)
    return out, h_n, dx, dh0, g


def feature_grid(dtypes):
    """Every combination of the stack's features, as tuples (layers in {1, 2}, bidirectional,
    batch_first, with lengths, with an initial state, dtype)."""
    return list(itertools.product([1, 2], [False, True], [False, True], [False, True],
                                  [False, True], dtypes))


def feature_id(case, lengths_words, state_words):
    """A test id for a feature_grid case, e.g. L2-bi-bf-len-h0-float32; the words name the
    lengths and initial-state flags (False, True) as the test knows them."""
    layers, bidirectional, batch_first, lengths, state, dtype = case
    dtype_name = getattr(dtype, "__name__", None) or str(dtype).rsplit(".", 1)[-1]
    return (f"L{layers}-{'bi' if bidirectional else 'uni'}-{'bf' if batch_first else 'tf'}-"
            f"{lengths_words[lengths]}-{state_words[state]}-{dtype_name}")


# In CI (CI set and not "false"), a skipped test fails the run: every oracle (torch, ONNX,
# onnxruntime, onnxscript, hypothesis) is installed there, so a skip means the suite tested less.
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPPED.append(f"{report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED and os.environ.get("CI", "").lower() not in ("", "0", "false"):
        print(f"\n{len(_SKIPPED)} test(s) skipped in CI, which counts as a failure:")
        for line in _SKIPPED[:20]:
            print("  " + line)
        session.exitstatus = 1
