"""Parameters as PyTorch names them: a GRU stack's names and shapes, and the table of named
arrays that the NumPy models share (attributes, state dicts, gradients)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ._checks import real_array, shape_text


def layer_parameters(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                     bias: bool) -> list[dict[str, tuple[int, ...]]]:
    """For each layer and direction, in PyTorch's order (layer-major, forward before reverse),
    its parameters' names and shapes: ``weight_ih_l{k}{suffix}`` (3H, I_k),
    ``weight_hh_l{k}{suffix}`` (3H, H) and, with ``bias``, ``bias_ih_...``, ``bias_hh_...``
    (3H,), where I_0 is the input size and I_k the directions times H above it."""
    directions = 2 if bidirectional else 1
    gates = 3 * hidden_size
    layers = []
    for layer in range(num_layers):
        inputs = input_size if layer == 0 else directions * hidden_size
        for suffix in ("", "_reverse")[:directions]:
            shapes = {f"weight_ih_l{layer}{suffix}": (gates, inputs),
                      f"weight_hh_l{layer}{suffix}": (gates, hidden_size)}
            if bias:
                shapes[f"bias_ih_l{layer}{suffix}"] = (gates,)
                shapes[f"bias_hh_l{layer}{suffix}"] = (gates,)
            layers.append(shapes)
    return layers


class NamedParameters:
    """Parameters as attributes named as in PyTorch, for a class whose instances hold
    ``_params`` (name -> array), ``_shapes`` (name -> shape), ``grads`` (name -> array) and
    ``dtype`` in their ``__dict__``. Assigning an attribute replaces the parameter with a
    checked copy; every other attribute set at construction is fixed."""

    def __getattr__(self, name: str) -> np.ndarray:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._params:
            self._params[name] = self._checked_parameter(name, value)
            self._parameters_changed()
        elif name in self.__dict__:
            raise AttributeError(f"{name} is fixed when the {type(self).__name__} is built; "
                                 f"make a new one instead")
        else:
            super().__setattr__(name, value)

    def _checked_parameter(self, name: str, value: Any) -> np.ndarray:
        array = real_array(value, name, self.dtype)
        if array.shape != self._shapes[name]:
            raise ValueError(f"{name}: expected shape {shape_text(self._shapes[name])}, "
                             f"got {shape_text(array.shape)}")
        return array.copy()

    def parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` pairs in PyTorch's order; the arrays are the live parameters."""
        yield from self._params.items()

    def state_dict(self) -> dict[str, np.ndarray]:
        """A dict of copies of the parameters, named as in PyTorch's ``state_dict()``."""
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace every parameter from a mapping of arrays (or anything with ``__array__``,
        such as a PyTorch state_dict). Missing, unexpected or mis-shaped entries are all named
        in one ValueError, and then nothing is changed."""
        missing = [name for name in self._params if name not in state_dict]
        unexpected = [name for name in state_dict if name not in self._params]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected {', '.join(map(str, unexpected))}")
        checked = {}
        for name in self._params:
            if name in state_dict:
                try:
                    checked[name] = self._checked_parameter(name, state_dict[name])
                except (TypeError, ValueError) as error:
                    problems.append(str(error))
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        self._params.update(checked)
        self._parameters_changed()

    def zero_grad(self) -> None:
        """Set every accumulated gradient in ``grads`` to zero, in place."""
        for g in self.grads.values():
            g.fill(0)

    def __getstate__(self) -> dict[str, Any]:
        """The instance's state for pickle and copy, with tables of its own: replacing a
        parameter of a shallow copy leaves the original's in place."""
        state = self.__dict__.copy()
        state["_params"], state["grads"] = dict(self._params), dict(self.grads)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)  # not through __setattr__, which fixes existing names

    def _parameters_changed(self) -> None:
        """Called after a parameter is replaced: a model that keeps packed weights drops them."""
