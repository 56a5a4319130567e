"""Keras GRU layers read by their config (eigengru.interop.from_keras), with Keras's own outputs
as the oracle (Keras 3 on its PyTorch backend), and every setting eigengru does not apply
refused by name."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eigengru import interop

from .conftest import assert_close

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras is the oracle (keras>=3, test extra)")

T, B, I, H = 7, 3, 4, 5
# Keras 3's variables warn under NumPy 2 when converted; that is Keras's own affair.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def keras_layer(rng, layer):
    """The layer built on a batch, its weights randomised; returns it and that batch."""
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    layer(x)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    return layer, x


def keras_outputs(layer, x):
    return [np.asarray(keras.ops.convert_to_numpy(y)) for y in layer(x)]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_a_gru_layer_computes_what_keras_does(rng, reset_after, use_bias):
    layer, x = keras_layer(rng, keras.layers.GRU(H, return_sequences=True, return_state=True,
                                                 reset_after=reset_after, use_bias=use_bias))
    want_out, want_state = keras_outputs(layer, x)
    for gru in (interop.from_keras(layer),
                interop.from_keras(layer.get_config(), layer.get_weights()),
                interop.from_keras(keras.layers.serialize(layer), layer.get_weights())):
        assert gru.batch_first and gru.reset_after == reset_after and gru.bias == use_bias
        out, h_n = gru(x)
        assert_close(out, want_out, np.float32, "out")
        assert_close(h_n[0], want_state, np.float32, "final state")


def test_a_bidirectional_layer_computes_what_keras_does(rng):
    layer, x = keras_layer(rng, keras.layers.Bidirectional(
        keras.layers.GRU(H, return_sequences=True), merge_mode="concat"))
    (want_out,) = [keras.ops.convert_to_numpy(layer(x))]
    gru = interop.from_keras(layer)
    assert gru.bidirectional
    out, _ = gru(x)
    assert_close(out, want_out, np.float32, "out")
    out, _ = interop.from_keras(keras.layers.serialize(layer), layer.get_weights())(x)
    assert_close(out, want_out, np.float32, "out, from the serialized config")


@pytest.mark.parametrize("recurrent_activation, activation",
                         [("hard_sigmoid", "tanh"), ("sigmoid", "relu"), ("hard_sigmoid", "relu")])
@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_activations_compute_what_keras_does(rng, recurrent_activation, activation,
                                                   reset_after):
    layer, x = keras_layer(rng, keras.layers.GRU(
        H, return_sequences=True, return_state=True, reset_after=reset_after,
        recurrent_activation=recurrent_activation, activation=activation))
    x = 3 * x  # reach hard_sigmoid's and relu's kinks and saturation
    want_out, want_state = keras_outputs(layer, x)
    gru = interop.from_keras(layer)
    assert gru.functions[:2] != ("sigmoid", "tanh")
    assert interop.from_keras(keras.layers.serialize(layer), layer.get_weights()).config() == \
        gru.config()
    out, h_n = gru(x)
    assert_close(out, want_out, np.float32, "out")
    assert_close(h_n[0], want_state, np.float32, "final state")
    bidirectional = keras.layers.Bidirectional(keras.layers.GRU(
        H, return_sequences=True, reset_after=reset_after,
        recurrent_activation=recurrent_activation, activation=activation))
    bidirectional, _ = keras_layer(rng, bidirectional)
    out, _ = interop.from_keras(bidirectional)(x)
    assert_close(out, keras.ops.convert_to_numpy(bidirectional(x)), np.float32, "bidirectional")


def hold_masks(cell, input_mask, recurrent_mask, per_gate):
    """Make a Keras GRU cell use these dropout masks (Keras's implementation 1, taken whenever
    recurrent dropout is on, wants one per gate: the same one three times)."""
    def given(mask):
        tensor = keras.ops.convert_to_tensor(mask)
        return (lambda _: [tensor] * 3) if per_gate else (lambda _: tensor)

    if input_mask is not None:
        cell.get_dropout_mask = given(input_mask)
    if recurrent_mask is not None:
        cell.get_recurrent_dropout_mask = given(recurrent_mask)


@pytest.mark.parametrize("dropout, recurrent_dropout", [(0.4, 0.0), (0.3, 0.5), (0.0, 0.5)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_dropout_in_training_is_keras_with_the_same_masks(rng, dropout, recurrent_dropout,
                                                         reset_after):
    layer, x = keras_layer(rng, keras.layers.GRU(
        H, return_sequences=True, return_state=True, reset_after=reset_after, dropout=dropout,
        recurrent_dropout=recurrent_dropout))
    gru = interop.from_keras(layer)
    assert (gru.input_dropout, gru.recurrent_dropout) == (dropout, recurrent_dropout)
    out, h_n = gru.forward(x, train=True)
    ((input_mask, recurrent_mask),) = gru.sequence_dropout_masks()
    hold_masks(layer.cell, input_mask, recurrent_mask, per_gate=recurrent_dropout > 0)
    want_out, want_state = [keras.ops.convert_to_numpy(y) for y in layer(x, training=True)]
    assert_close(out, want_out, np.float32, "out")
    assert_close(h_n[0], want_state, np.float32, "final state")
    assert np.abs(gru(x)[0] - out).max() > 1e-3  # the masks made a difference


def test_bidirectional_dropout_is_keras_with_each_directions_masks(rng):
    layer, x = keras_layer(rng, keras.layers.Bidirectional(keras.layers.GRU(
        H, return_sequences=True, dropout=0.3, recurrent_dropout=0.4)))
    gru = interop.from_keras(layer)
    out, _ = gru.forward(x, train=True)
    for direction, masks in zip((layer.forward_layer, layer.backward_layer),
                                gru.sequence_dropout_masks()):
        hold_masks(direction.cell, *masks, per_gate=True)
    want = keras.ops.convert_to_numpy(layer(x, training=True))
    assert_close(out, want, np.float32, "out")


def test_keras_2_hard_sigmoid_is_an_option(rng):
    layer, _ = keras_layer(rng, keras.layers.GRU(H, recurrent_activation="hard_sigmoid"))
    assert interop.from_keras(layer).gate_activation == ("hard_sigmoid", 1 / 6, 0.5)
    older = interop.from_keras(layer, hard_sigmoid=(0.2, 0.5))
    assert older.gate_activation == ("hard_sigmoid", 0.2, 0.5)


@pytest.mark.parametrize("make, message", [
    (lambda: keras.layers.GRU(H, recurrent_activation="softsign"),
     "recurrent_activation = 'softsign' is not supported"),
    (lambda: keras.layers.GRU(H, activation="linear"), "activation = 'linear' is not supported"),
    (lambda: keras.layers.Bidirectional(
        keras.layers.GRU(H), backward_layer=keras.layers.GRU(H, activation="relu",
                                                             go_backwards=True)),
     "must have the same units, use_bias, reset_after, activations and dropout"),
    (lambda: keras.layers.GRU(H, kernel_regularizer="l2"), "kernel_regularizer = .* is not"),
    (lambda: keras.layers.Bidirectional(keras.layers.GRU(H), merge_mode="sum"),
     "merge_mode = 'sum' is not supported"),
    (lambda: keras.layers.Bidirectional(keras.layers.LSTM(H)), "wraps a LSTM"),
    (lambda: keras.layers.LSTM(H), "expected a keras GRU or Bidirectional"),
])
def test_settings_eigengru_does_not_apply_are_refused_by_name(rng, make, message):
    layer, _ = keras_layer(rng, make())
    with pytest.raises(ValueError, match=message):
        interop.from_keras(layer)
