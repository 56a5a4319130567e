"""reverse=True: every layer runs backwards in time only, with ONNX's semantics (each row from its
own last valid step, outputs in time order), against the NumPy reference run on each row's
reversed sequence and Keras's go_backwards (ONNX Runtime runs reverse models written by
to_onnx in test_onnx_models.py)."""

from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest

import eigengru
from eigengru import interop

from . import reference
from .conftest import assert_close

T, B, I, H = 6, 3, 4, 5


def reverse_reference(gru, x, h0, lengths, grad_out):
    """Each row's valid steps reversed, run forward and backward by the NumPy reference, the
    outputs and input gradients put back in time order; the weight gradients summed."""
    w = reference.weights_of(dict(gru.parameters()), H)
    out, dx = np.zeros((T, B, H)), np.zeros((T, B, I))
    h_n, dh0, grads = np.zeros((B, H)), np.zeros((B, H)), None
    for b in range(B):
        n = lengths[b]
        xs = x[:n, b:b + 1][::-1].astype(np.float64)
        o, hn, saved = reference.forward(w, xs, h0[0, b:b + 1].astype(np.float64), gru.reset_after)
        d, dh, g = reference.backward(w, saved, grad_out[:n, b:b + 1][::-1].astype(np.float64),
                                      np.zeros((1, H)), gru.reset_after)
        out[:n, b], dx[:n, b], h_n[b], dh0[b] = o[::-1, 0], d[::-1, 0], hn[0], dh[0]
        grads = g if grads is None else {k: grads[k] + v for k, v in g.items()}
    return out, h_n, dx, dh0, grads


@pytest.mark.parametrize("reset_after", [True, False])
def test_a_reverse_layer_runs_each_row_from_its_own_end(rng, reset_after):
    gru = eigengru.GRU(I, H, reverse=True, reset_after=reset_after, dtype=np.float64, seed=2)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.6, 0.6, p.shape))
    x = rng.standard_normal((T, B, I))
    h0 = rng.uniform(-0.5, 0.5, (1, B, H))
    lengths = np.array([T, 2, 4])
    grad_out = rng.standard_normal((T, B, H))
    out, h_n = gru.forward(x, h0, lengths=lengths, train=True)
    dx, dh0 = gru.backward(grad_out)
    want_out, want_h_n, want_dx, want_dh0, want_grads = reverse_reference(gru, x, h0, lengths,
                                                                          grad_out)
    assert_close(out, want_out, np.float64, "out")
    assert_close(h_n[0], want_h_n, np.float64, "h_n")
    assert_close(dx, want_dx, np.float64, "dx")
    assert_close(dh0[0], want_dh0, np.float64, "dh0")
    names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
             "b_hh": "bias_hh_l0"}
    for name, g in want_grads.items():
        assert_close(gru.grads[names[name]], g, np.float64, names[name])


def test_an_onnx_reverse_node_is_a_reverse_model(rng):
    """from_onnx(direction="reverse"); ONNX Runtime runs reverse models in
    test_onnx_models.py."""
    gru = eigengru.GRU(I, H, reverse=True, reset_after=False, seed=4)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([3, T, 1])

    def zrn(rows):  # (r, z, n) blocks to ONNX's (z, r, h)
        return np.concatenate([rows[H:2 * H], rows[:H], rows[2 * H:]])

    one = interop.from_onnx(zrn(gru.weight_ih_l0)[None], zrn(gru.weight_hh_l0)[None],
                            np.concatenate([zrn(gru.bias_ih_l0), zrn(gru.bias_hh_l0)])[None],
                            direction="reverse")
    assert one.reverse and not one.bidirectional and not one.reset_after
    np.testing.assert_array_equal(one(x, lengths=lengths)[0], gru(x, lengths=lengths)[0])


@pytest.mark.filterwarnings(  # Keras 3's variables under NumPy 2: Keras's own affair
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_keras_go_backwards_is_a_reverse_model(rng):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras is the oracle (keras>=3, test extra)")
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    layer = keras.layers.GRU(H, go_backwards=True, return_sequences=True, return_state=True)
    layer(x)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    want_out, want_state = (keras.ops.convert_to_numpy(y) for y in layer(x))
    gru = interop.from_keras(layer)
    assert gru.reverse and gru.batch_first
    out, h_n = gru(x)
    assert_close(out[:, ::-1], want_out, np.float32, "out, in Keras's processing order")
    assert_close(h_n[0], want_state, np.float32, "final state")


def test_reverse_survives_files_and_copies(tmp_path):
    gru = eigengru.GRU(I, H, num_layers=2, reverse=True, seed=1)
    assert "reverse=True" in repr(gru)
    for path in (tmp_path / "m.egru", tmp_path / "m.npz"):
        gru.save(path)
        back = eigengru.GRU.load(path)
        assert back.config() == gru.config()
    for twin in (pickle.loads(pickle.dumps(gru)), copy.deepcopy(gru)):
        assert twin.reverse
        x = np.ones((T, B, I), np.float32)
        np.testing.assert_array_equal(twin(x)[0], gru(x)[0])


def test_what_reverse_cannot_do_is_refused():
    with pytest.raises(ValueError, match="reverse: for one direction"):
        eigengru.GRU(I, H, bidirectional=True, reverse=True)
    gru = eigengru.GRU(I, H, reverse=True)
    with pytest.raises(ValueError, match="a reverse GRU cannot run step by step"):
        gru.stream()
    with pytest.raises(ValueError, match=r"torch\.nn\.GRU has no reverse-only layers"):
        interop.to_torch_state_dict(gru)
