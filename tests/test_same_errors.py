"""The same mistake gets the same exception, with the same message, from the NumPy classes and
from their PyTorch drop-ins."""

from __future__ import annotations

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
