"""Forward and backward of one layer against the NumPy reference, on random data."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import GRAD_NAMES, assert_close, random_case, reference_run

SHAPES = [  # (T, B, I, H): T=1, B=1, H not a multiple of the vector width, a panel edge (32);
    # B=1 with H a multiple of it: the fused batch-1 step (float: 1 and 3 vectors of units;
    # double: 2, and 6 in two groups)
    (1, 1, 1, 1),
    (1, 3, 4, 7),
    (6, 1, 5, 9),
    (7, 1, 6, 16),
    (4, 1, 2, 48),
    (9, 4, 16, 13),
    (5, 7, 3, 32),
    (13, 10, 11, 33),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_matches_reference(rng, shape, reset_after, dtype, bias):
    steps, batch, inputs, hidden = shape
    gru, x, h0 = random_case(rng, steps, batch, inputs, hidden, bias=bias,
                             reset_after=reset_after, dtype=dtype, with_h0=bias)
    grad_out = rng.standard_normal((steps, batch, hidden))
    grad_h_n = rng.standard_normal((1, batch, hidden))
    ref_out, ref_h_n, ref_dx, ref_dh0, ref_grads = reference_run(gru, x, h0, grad_out, grad_h_n[0])

    out, h_n = gru(x, h0)
    assert out.dtype == dtype and h_n.dtype == dtype
    assert_close(out, ref_out, dtype, "inference out")
    assert_close(h_n[0], ref_h_n, dtype, "inference h_n")

    out_t, h_n_t = gru.forward(x, h0, train=True)
    np.testing.assert_array_equal(out_t, out)  # training and inference compute the same thing
    np.testing.assert_array_equal(h_n_t, h_n)
    dx, dh0 = gru.backward(grad_out.astype(dtype), grad_h_n.astype(dtype))
    assert_close(dx, ref_dx, dtype, "dx")
    assert_close(dh0[0], ref_dh0, dtype, "dh0")
    for ref_name, name in GRAD_NAMES.items():
        if name in gru.grads:
            assert_close(gru.grads[name], ref_grads[ref_name], dtype, name)


@pytest.mark.parametrize("reset_after", [True, False])
def test_long_sequence_float32_tracks_float64(rng, reset_after):
    """Rounding does not build up over many steps: float32 stays within tolerance of float64."""
    gru64, x, h0 = random_case(rng, 300, 3, 6, 24, reset_after=reset_after, dtype=np.float64)
    gru32 = type(gru64)(6, 24, reset_after=reset_after, dtype=np.float32)
    for name, p in gru64.parameters():
        setattr(gru32, name, p)
    grad_out = rng.standard_normal((300, 3, 24))
    gru64.forward(x, h0, train=True)
    gru32.forward(x, h0, train=True)
    out64, _ = gru64(x, h0)
    out32, _ = gru32(x, h0)
    assert_close(out32, out64, np.float32, "out", factor=10)
    dx64, _ = gru64.backward(grad_out)
    dx32, _ = gru32.backward(grad_out.astype(np.float32))
    assert_close(dx32, dx64, np.float32, "dx", factor=10)


def test_gradients_ignore_missing_output_gradient(rng):
    """grad_out=None means zero: the gradient of a loss on h_n alone."""
    gru, x, h0 = random_case(rng, 4, 3, 5, 6)
    grad_h_n = rng.standard_normal((1, 3, 6))
    _, _, ref_dx, ref_dh0, _ = reference_run(gru, x, h0, np.zeros((4, 3, 6)), grad_h_n[0])
    gru.forward(x, h0, train=True)
    dx, dh0 = gru.backward(None, grad_h_n)
    assert_close(dx, ref_dx, np.float64, "dx")
    assert_close(dh0[0], ref_dh0, np.float64, "dh0")
