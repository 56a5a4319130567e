"""Finite differences in float64 for every gradient: input, initial state and each parameter."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import random_case

EPS = 1e-6


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_every_gradient_matches_central_differences(rng, reset_after):
    steps, batch, inputs, hidden = 4, 3, 3, 5
    gru, x, h0 = random_case(rng, steps, batch, inputs, hidden, reset_after=reset_after)
    grad_out = rng.standard_normal((steps, batch, hidden))
    grad_h_n = rng.standard_normal((1, batch, hidden))

    def loss():
        out, h_n = gru(x, h0)
        return np.sum(out * grad_out) + np.sum(h_n * grad_h_n)

    gru.forward(x, h0, train=True)
    dx, dh0 = gru.backward(grad_out, grad_h_n)
    analytic = {"x": (x, dx), "h0": (h0, dh0)}
    analytic.update({name: (p, gru.grads[name]) for name, p in gru.parameters()})

    for name, (array, gradient) in analytic.items():
        numeric = np.empty_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + EPS
            up = loss()
            array[index] = saved - EPS
            down = loss()
            array[index] = saved
            numeric[index] = (up - down) / (2 * EPS)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-7, err_msg=name)
