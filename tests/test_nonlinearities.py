"""Gate functions other than sigmoid and tanh, and clip (ONNX's activations): every pass of
eigengru.GRU against the NumPy reference, which differentiates at the pre-activations where the
core differentiates from the gates' values; the one-step paths, files and copies; bad
arguments refused by name."""

from __future__ import annotations

import copy
import pickle
import struct
import zlib

import numpy as np
import pytest

import eigengru
from eigengru import interop

from . import reference
from .conftest import assert_close, assert_stack_training_is

T, B, I, H = 6, 3, 4, 16
CASES = {
    "hard sigmoid, relu, clip": (("hard_sigmoid", 0.3, 0.45), "relu", 1.5),
    "sigmoid, tanh, clip": ("sigmoid", "tanh", 0.5),
    "relu gates clipped, hard sigmoid": ("relu", "hard_sigmoid", 0.9),
}


def model(functions, dtype=np.float64, **kwargs):
    gate, candidate, clip = functions
    return eigengru.GRU(I, H, dtype=dtype, seed=7, gate_activation=gate,
                        candidate_activation=candidate, clip=clip, **kwargs)


@pytest.mark.parametrize("functions", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("reset_after", [True, False])
def test_every_pass_is_the_reference(rng, functions, reset_after):
    gru = model(functions, num_layers=2, bidirectional=True, reset_after=reset_after)
    x = rng.standard_normal((T, B, I))
    h0 = rng.uniform(-0.8, 0.8, (4, B, H))
    lengths = np.array([T, 2, 5])
    grad_out = rng.standard_normal((T, B, 2 * H))
    grad_h_n = rng.standard_normal((4, B, H))
    out, h_n = gru.forward(x, h0, lengths=lengths, train=True)
    dx, dh0 = gru.backward(grad_out * (np.arange(T) < lengths[:, None]).T[..., None], grad_h_n)
    want = reference.stack(dict(gru.parameters()), 2, True, reset_after, x, h0, lengths,
                           grad_out, grad_h_n, reference.Functions(*functions))
    assert_stack_training_is(gru, (out, h_n, dx, dh0), want, np.float64)
    # the functions ran: the same weights with sigmoid and tanh give other outputs
    standard = eigengru.GRU(I, H, num_layers=2, bidirectional=True, reset_after=reset_after,
                            dtype=np.float64)
    standard.load_state_dict(gru.state_dict())
    assert np.abs(standard(x, h0, lengths=lengths)[0] - out).max() > 1e-2


@pytest.mark.parametrize("functions", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("reset_after", [True, False])
def test_float32_and_the_one_step_paths(rng, functions, reset_after):
    """Batch 1 of 16 units with the reset after the product would take the fused step of the
    standard functions; these take the general one, and every path agrees."""
    gru = model(functions, dtype=np.float32, num_layers=2, reset_after=reset_after)
    x = rng.standard_normal((T, 1, I)).astype(np.float32)
    out, h_n = gru(x)
    want_out, want_h_n, *_ = reference.stack(
        dict(gru.parameters()), 2, False, reset_after, x.astype(np.float64), np.zeros((2, 1, H)),
        [T], np.zeros((T, 1, H)), np.zeros((2, 1, H)), reference.Functions(*functions))
    assert_close(out, want_out, np.float32, "out")
    assert_close(h_n, want_h_n, np.float32, "h_n")
    stream = gru.stream(1)
    streamed = np.stack([stream.step(x[t]) for t in range(T)])
    assert_close(streamed, want_out, np.float32, "streamed")
    h = None
    for t in range(T):  # one-step calls: the stack packed for single steps
        step_out, h = gru(x[t : t + 1], h)
        assert_close(step_out[0], want_out[t], np.float32, f"one-step call {t}")


def test_functions_survive_files_and_copies(tmp_path, rng):
    gru = model(CASES["hard sigmoid, relu, clip"], dtype=np.float32, num_layers=2)
    assert "gate_activation=('hard_sigmoid', 0.3, 0.45)" in repr(gru)
    assert "candidate_activation='relu'" in repr(gru) and "clip=1.5" in repr(gru)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    out, _ = gru(x)
    copies = [pickle.loads(pickle.dumps(gru)), copy.deepcopy(gru)]
    for path in (tmp_path / "m.egru", tmp_path / "m.npz"):
        gru.save(path)
        copies.append(eigengru.GRU.load(path))
    for twin in copies:
        assert twin.functions == gru.functions and twin.config() == gru.config()
        np.testing.assert_array_equal(twin(x)[0], out)
    standard = eigengru.GRU(I, H)
    assert "gate_activation" not in standard.config() and "clip" not in repr(standard)


@pytest.mark.parametrize("field, value, message", [
    (0, 9, r"unknown activation kind in \(9, 3\)"),
    (4, 0.5, r"relu takes no parameters, got \(0.5, 0.0\)"),
    (6, -1.0, "clip -1.0 is negative or not a number"),
])
def test_a_damaged_functions_block_is_refused_by_name(tmp_path, field, value, message):
    """The .egru functions block (i32 kinds, then alpha, beta of each and clip), altered and
    given a valid checksum: the Python reader names the problem."""
    path = tmp_path / "m.egru"
    model(CASES["hard sigmoid, relu, clip"], dtype=np.float32).save(path)
    data = bytearray(path.read_bytes())
    block = struct.Struct("<8sIIIIIId").size
    offset = block + (4 * field if field < 2 else 8 + 8 * (field - 2))
    struct.pack_into("<i" if field < 2 else "<d", data, offset, value)
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"not a readable eigengru model file \\({message}"):
        eigengru.GRU.load(path)


def test_hard_sigmoid_takes_onnx_defaults():
    gru = eigengru.GRU(I, H, gate_activation="hard_sigmoid")
    assert gru.gate_activation == ("hard_sigmoid", 0.2, 0.5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"gate_activation": "elu"}, ValueError, "gate_activation: unknown activation 'elu'"),
    ({"candidate_activation": ("tanh", 1.0)}, ValueError,
     r"candidate_activation: tanh takes no parameters"),
    ({"gate_activation": ("hard_sigmoid", 0.2)}, ValueError,
     r"gate_activation: hard_sigmoid takes \(alpha, beta\)"),
    ({"gate_activation": ("hard_sigmoid", float("nan"), 0.5)}, ValueError, "must be finite"),
    ({"gate_activation": 3}, TypeError, "gate_activation: expected an activation name"),
    ({"clip": 0}, ValueError, "clip: expected a finite positive number"),
    ({"clip": float("inf")}, ValueError, "clip: expected a finite positive number"),
    ({"clip": "big"}, TypeError, "clip: expected a positive number"),
])
def test_bad_functions_are_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        eigengru.GRU(I, H, **kwargs)


def test_torch_cannot_take_other_functions():
    with pytest.raises(ValueError, match=r"torch\.nn\.GRU computes sigmoid and tanh without clip"):
        interop.to_torch_state_dict(eigengru.GRU(I, H, clip=2.0))
