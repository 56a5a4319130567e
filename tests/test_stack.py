"""Stack features beyond one layer that PyTorch cannot check exactly: dropout, files, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import eigengru

from .conftest import assert_close

T, B, I, H = 6, 4, 3, 5


def model(**kwargs):
    arguments = dict(input_size=I, hidden_size=H, num_layers=3, bidirectional=True,
                     dtype=np.float64, seed=11) | kwargs
    return eigengru.GRU(**arguments)


def test_dropout_applies_in_training_only_and_is_reproducible(rng):
    x = rng.standard_normal((T, B, I))
    plain, dropped, again = model(), model(dropout=0.5), model(dropout=0.5)
    np.testing.assert_array_equal(plain(x)[0], dropped(x)[0])  # inference: no dropout
    out_plain, _ = plain.forward(x, train=True)
    out_dropped, _ = dropped.forward(x, train=True)
    out_again, _ = again.forward(x, train=True)
    assert not np.allclose(out_plain, out_dropped)
    np.testing.assert_array_equal(out_dropped, out_again)  # same seed, same masks
    out_next, _ = again.forward(x, train=True)
    assert not np.array_equal(out_next, out_again)  # each training forward draws new masks


def test_dropout_gradient_matches_a_directional_finite_difference(rng):
    """Models built from one seed draw the same masks, so L(w + eps v) - L(w - eps v) over
    2 eps is the derivative along v of the very function whose gradient backward computes."""
    x = rng.standard_normal((T, B, I))
    grad_out = rng.standard_normal((T, B, 2 * H))
    direction = {name: rng.standard_normal(p.shape) for name, p in model().parameters()}

    def shifted(eps):
        m = model(dropout=0.4)
        for name, p in m.parameters():
            p[...] += eps * direction[name]
        return m

    def loss(m):
        out, _ = m.forward(x, train=True)
        return float(np.sum(out * grad_out))

    eps = 1e-6
    numeric = (loss(shifted(eps)) - loss(shifted(-eps))) / (2 * eps)
    m = shifted(0.0)
    m.forward(x, train=True)
    m.backward(grad_out)
    analytic = sum(float(np.sum(m.grads[name] * v)) for name, v in direction.items())
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric))


def test_save_and_load_round_trip(tmp_path, rng):
    gru = model(batch_first=True, reset_after=False, dropout=0.25)
    path = tmp_path / "model.npz"
    gru.save(path)
    back = eigengru.GRU.load(path)
    assert back.config() == gru.config()
    x = rng.standard_normal((B, T, I))
    np.testing.assert_array_equal(back(x)[0], gru(x)[0])
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        assert set(archive.files) == {"__eigengru_config__"} | set(gru.state_dict())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_egru_format_round_trip_and_damage(tmp_path, rng, dtype):
    gru = model(reset_after=False, bias=False, dtype=dtype)
    path = tmp_path / "model.egru"
    gru.save(path)
    data = path.read_bytes()
    assert data[:8] == b"EIGENGRU"
    back = eigengru.GRU.load(path)
    assert back.config() == gru.config()
    x = rng.standard_normal((T, B, I))
    np.testing.assert_array_equal(back(x)[0], gru(x)[0])
    damaged = bytearray(data)
    damaged[100] ^= 1
    (tmp_path / "damaged.egru").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="checksum mismatch"):
        eigengru.GRU.load(tmp_path / "damaged.egru")
    (tmp_path / "short.egru").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"damaged\.egru|short\.egru"):
        eigengru.GRU.load(tmp_path / "short.egru")


def test_save_replaces_atomically_and_load_rejects_bad_files(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model().save(path)
    good = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # an interruption in the middle of writing

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(KeyboardInterrupt):
        model(seed=99).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good  # the old file is intact
    assert os.listdir(tmp_path) == ["model.npz"]  # and no temporary file is left

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a readable eigengru model file"):
        eigengru.GRU.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable eigengru model file"):
        eigengru.GRU.load(other)


def test_load_state_dict_names_every_problem_and_changes_nothing():
    gru = model(num_layers=2, bidirectional=False)
    before = gru.state_dict()
    bad = dict(before)
    del bad["bias_hh_l1"]
    bad["weight_ih_l7"] = np.zeros(3)
    bad["weight_hh_l0"] = np.zeros((H, H))
    with pytest.raises(ValueError) as error:
        gru.load_state_dict(bad)
    message = str(error.value)
    assert "missing bias_hh_l1" in message and "unexpected weight_ih_l7" in message
    assert "weight_hh_l0: expected shape (15, 5), got (5, 5)" in message
    for name, p in gru.parameters():
        np.testing.assert_array_equal(p, before[name])


@pytest.mark.parametrize("lengths, error, message", [
    ([T, 2, 3], ValueError, r"lengths: expected one length per batch row, shape \(4,\)"),
    ([T, 0, 3, 1], ValueError, r"lengths: each must be in \[1, 6\]"),
    ([T, -1, 3, 1], ValueError, r"lengths: each must be in \[1, 6\]"),
    ([T, 7, 3, 1], ValueError, r"lengths: each must be in \[1, 6\]"),
    ([6.0, 2.5, 3.0, 1.0], TypeError, "lengths: expected integers"),
])
def test_bad_lengths_are_refused(rng, lengths, error, message):
    with pytest.raises(error, match=message):
        model()(rng.standard_normal((T, B, I)), lengths=lengths)


def test_layouts_and_their_errors(rng):
    gru = model(batch_first=True)
    x = rng.standard_normal((B, T, I))
    out, h_n = gru(x)
    assert out.shape == (B, T, 2 * H) and h_n.shape == (6, B, H)
    time_first = model()
    assert_close(out, time_first(x.transpose(1, 0, 2))[0].transpose(1, 0, 2), np.float64, "out")
    with pytest.raises(ValueError, match=r"h0: expected shape .* = \(6, 4, 5\)"):
        gru(x, np.zeros((2, B, H)))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, steps, input_size\)"):
        gru(np.zeros((B, T, I + 1)))
    with pytest.raises(ValueError, match="lengths: only for batched input"):
        gru(np.zeros((T, I)), lengths=[T])
    gru.forward(x, train=True)
    with pytest.raises(ValueError, match=r"grad_out: expected shape out's shape = \(4, 6, 10\)"):
        gru.backward(np.zeros((T, B, 2 * H)))


@pytest.mark.parametrize("bad, message", [
    (dict(num_layers=0), "num_layers: expected a positive integer"),
    (dict(dropout=1.0), r"dropout: expected a number in \[0, 1\)"),
    (dict(dropout=-0.1), r"dropout: expected a number in \[0, 1\)"),
])
def test_constructor_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model(**bad)
