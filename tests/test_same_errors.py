"""The same mistake gets the same exception, with the same message, from the NumPy classes and
from their PyTorch drop-ins."""

from __future__ import annotations

import numpy as np
import pytest

import eigengru

torch = pytest.importorskip("torch", reason="the drop-ins need PyTorch (torch==2.13.0)")
import eigengru.torch as egt  # noqa: E402

CONSTRUCTORS = {"eigengru.GRU": eigengru.GRU, "eigengru.torch.GRU": egt.GRU,
                "eigengru.GRUCell": eigengru.GRUCell, "eigengru.torch.GRUCell": egt.GRUCell}


@pytest.mark.parametrize("sizes, error, message", [
    ((3, 2.5), TypeError, "hidden_size: expected a positive integer, got 2.5"),
    ((3, True), TypeError, "hidden_size: expected a positive integer, got True"),
    ((3, "4"), TypeError, "hidden_size: expected a positive integer, got '4'"),
    ((0, 4), ValueError, "input_size: expected a positive integer, got 0"),
    ((3, -2), ValueError, "hidden_size: expected a positive integer, got -2"),
], ids=["float", "bool", "str", "zero", "negative"])
def test_bad_sizes_raise_alike(sizes, error, message):
    raised = {}
    for name, make in CONSTRUCTORS.items():
        with pytest.raises(error) as caught:
            make(*sizes)
        raised[name] = (type(caught.value), str(caught.value))
    assert set(raised.values()) == {(error, message)}, raised


@pytest.mark.parametrize("dropout, error", [(1.5, ValueError), (-0.1, ValueError),
                                            ("0.5", TypeError), (True, TypeError)])
def test_bad_dropout_raises_alike(dropout, error):
    raised = set()
    for make in (eigengru.GRU, egt.GRU):
        with pytest.raises(error) as caught:
            make(3, 4, num_layers=2, dropout=dropout)
        raised.add((type(caught.value), str(caught.value)))
    assert raised == {(error, f"dropout: expected a number in [0, 1), got {dropout!r}")}


def call_error(call, *args):
    """The exception type and the message after the argument's name, which each API names as
    its own signature does (x or input, h0 or hx, h or hx)."""
    with pytest.raises((TypeError, ValueError)) as caught:
        call(*args)
    _, _, rest = str(caught.value).partition(": ")
    return type(caught.value), rest


# (model kind, input shape, state shape or None): each a mistake in the input or the state.
MISTAKES = [
    ("GRU", (5, 2, 4), None),         # input_size 4 instead of 3
    ("GRU", (5, 2, 3, 1), None),      # four dimensions
    ("GRU", (5, 2, 3), (2, 3, 6)),    # state batch 3 instead of 2
    ("GRU", (5, 3), (2, 2, 6)),       # unbatched input, batched state
    ("GRU", (5, 3), (1, 6)),          # unbatched, one layer-direction short
    ("GRUCell", (2, 4), None),
    ("GRUCell", (2, 3), (3, 6)),
    ("GRUCell", (3,), (1, 6)),
]


@pytest.mark.parametrize("kind, x_shape, h_shape", MISTAKES)
def test_bad_call_arguments_raise_alike(rng, kind, x_shape, h_shape):
    numpy_model = eigengru.GRU(3, 6, num_layers=2) if kind == "GRU" else eigengru.GRUCell(3, 6)
    torch_model = egt.GRU(3, 6, num_layers=2) if kind == "GRU" else egt.GRUCell(3, 6)
    x = rng.standard_normal(x_shape).astype(np.float32)
    h = None if h_shape is None else rng.standard_normal(h_shape).astype(np.float32)
    ours = call_error(numpy_model, x, h)
    h_tensor = None if h is None else torch.from_numpy(h)
    theirs = call_error(torch_model, torch.from_numpy(x), h_tensor)
    assert ours == theirs
    assert "expected shape" in ours[1]
