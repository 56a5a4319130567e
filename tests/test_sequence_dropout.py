"""Per-sequence (variational) dropout, input_dropout and recurrent_dropout: one mask per
layer-direction and sequence, kept for every step and shared by the gates. The training forward
and backward against the NumPy reference run with the masks the model drew; central
differences with the masks held (the same seed draws them again); Keras 3 given the same masks
(tests/test_keras.py); files, copies and bad values."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import eigengru

from . import reference
from .conftest import assert_stack_training_is

T, B, I, H = 6, 4, 5, 7


@pytest.mark.parametrize("input_dropout, recurrent_dropout", [(0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_training_passes_are_the_reference_with_the_drawn_masks(rng, input_dropout,
                                                                recurrent_dropout, reset_after):
    gru = eigengru.GRU(I, H, num_layers=2, bidirectional=True, reset_after=reset_after,
                       input_dropout=input_dropout, recurrent_dropout=recurrent_dropout,
                       dtype=np.float64, seed=3)
    x = rng.standard_normal((T, B, I))
    h0 = rng.uniform(-0.8, 0.8, (4, B, H))
    lengths = np.array([T, 2, 5, 3])
    grad_out = rng.standard_normal((T, B, 2 * H)) * (np.arange(T)[:, None] < lengths)[..., None]
    grad_h_n = rng.standard_normal((4, B, H))
    out, h_n = gru.forward(x, h0, lengths=lengths, train=True)
    masks = gru.sequence_dropout_masks()
    for (input_mask, recurrent_mask), inputs in zip(masks, (I, I, 2 * H, 2 * H)):
        assert (input_mask is None) == (input_dropout == 0)
        assert (recurrent_mask is None) == (recurrent_dropout == 0)
        for mask, p, width in ((input_mask, input_dropout, inputs),
                               (recurrent_mask, recurrent_dropout, H)):
            if mask is not None:
                assert mask.shape == (B, width)
                assert set(np.unique(mask)) <= {0.0, 1 / (1 - p)} and 0 < (mask == 0).sum()
    assert not np.array_equal(masks[0], masks[1])  # each direction draws its own
    dx, dh0 = gru.backward(grad_out, grad_h_n)
    want = reference.stack(dict(gru.parameters()), 2, True, reset_after, x, h0, lengths,
                           grad_out, grad_h_n, masks=masks)
    assert_stack_training_is(gru, (out, h_n, dx, dh0), want, np.float64)
    # the masks changed something, and inference applies none
    plain, _ = gru(x, h0, lengths=lengths)
    assert np.abs(plain - out).max() > 1e-3
    np.testing.assert_array_equal(plain, eigengru.GRU(I, H, num_layers=2, bidirectional=True,
                                                      reset_after=reset_after, dtype=np.float64,
                                                      seed=3)(x, h0, lengths=lengths)[0])


def test_gradients_are_central_differences_with_the_masks_held(rng):
    """The masks come from the model's generator: a model made with the same seed and weights
    draws the same ones, so the loss is a function of the weights alone. Between-layer dropout
    is on as well."""
    settings = dict(num_layers=2, input_dropout=0.3, recurrent_dropout=0.4, dropout=0.2,
                    reset_after=False, dtype=np.float64, seed=11)
    gru = eigengru.GRU(I, H, **settings)
    x = rng.standard_normal((T, B, I))
    c = rng.standard_normal((T, B, H))

    def loss(params):
        twin = eigengru.GRU(I, H, **settings)
        twin.load_state_dict(params)
        out, _ = twin.forward(x, train=True)
        return float((out * c).sum()), twin

    _, trained = loss(gru.state_dict())
    trained.backward(c)
    params = gru.state_dict()
    for name in ("weight_hh_l0", "weight_ih_l1", "bias_hh_l1"):
        flat = params[name].reshape(-1)
        for index in rng.choice(flat.size, 6, replace=False):
            saved, eps = flat[index], 1e-6
            flat[index] = saved + eps
            plus, _ = loss(params)
            flat[index] = saved - eps
            minus, _ = loss(params)
            flat[index] = saved
            numeric = (plus - minus) / (2 * eps)
            analytic = trained.grads[name].reshape(-1)[index]
            assert abs(numeric - analytic) < 1e-6 * max(1.0, abs(numeric)), (name, index)


def test_masks_are_reproducible_from_the_seed_and_fresh_at_each_forward(rng):
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    first, second = (eigengru.GRU(I, H, input_dropout=0.5, recurrent_dropout=0.5, seed=5)
                     for _ in range(2))
    out_a, _ = first.forward(x, train=True)
    out_b, _ = second.forward(x, train=True)
    np.testing.assert_array_equal(out_a, out_b)
    masks = first.sequence_dropout_masks()
    again, _ = first.forward(x, train=True)
    assert not np.array_equal(again, out_a)
    assert not np.array_equal(first.sequence_dropout_masks()[0][0], masks[0][0])


def test_sequence_dropout_survives_files_and_copies(tmp_path):
    gru = eigengru.GRU(I, H, input_dropout=0.25, recurrent_dropout=0.125, seed=1)
    assert "input_dropout=0.25, recurrent_dropout=0.125" in repr(gru)
    copies = [pickle.loads(pickle.dumps(gru)), copy.deepcopy(gru)]
    for path in (tmp_path / "m.egru", tmp_path / "m.npz"):
        gru.save(path)
        copies.append(eigengru.GRU.load(path))
    for twin in copies:
        assert (twin.input_dropout, twin.recurrent_dropout) == (0.25, 0.125)
        assert twin.config() == gru.config()
    assert "input_dropout" not in eigengru.GRU(I, H).config()


@pytest.mark.parametrize("name", ["input_dropout", "recurrent_dropout"])
def test_bad_probabilities_are_refused_by_name(name):
    with pytest.raises(ValueError, match=rf"{name}: expected a number in \[0, 1\), got 1.0"):
        eigengru.GRU(I, H, **{name: 1.0})
    with pytest.raises(TypeError, match=rf"{name}: expected a number in \[0, 1\)"):
        eigengru.GRU(I, H, **{name: "half"})


def test_masks_need_a_training_forward():
    with pytest.raises(RuntimeError, match="no training forward awaits its backward"):
        eigengru.GRU(I, H, input_dropout=0.5).sequence_dropout_masks()
