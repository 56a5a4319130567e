"""The functions a GRU may use in place of sigmoid (r, z) and tanh (n), and a clip of their
pre-activations: ONNX's ``activations``, ``activation_alpha``/``activation_beta`` and ``clip``.

An activation argument is a name, ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"hard_sigmoid"``
(ONNX's ``max(0, min(1, alpha * a + beta))`` with its defaults alpha 0.2, beta 0.5), or
``("hard_sigmoid", alpha, beta)``. A model keeps the first three as names and a hard sigmoid as
that tuple.
"""

from __future__ import annotations

import math
from typing import Any

Activation = str | tuple[str, float, float]

KINDS = {"sigmoid": 0, "tanh": 1, "hard_sigmoid": 2, "relu": 3}  # eigengru::Activation::Kind
HARD_SIGMOID_DEFAULTS = (0.2, 0.5)  # ONNX's
STANDARD = ("sigmoid", "tanh", None)  # gate, candidate, clip of PyTorch's and cuDNN's GRU


def activation(value: Any, name: str) -> Activation:
    """The normalised form of an activation argument; TypeError or ValueError naming ``name``
    otherwise."""
    if isinstance(value, str):
        kind, params = value, ()
    elif isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
        kind, params = value[0], tuple(value[1:])
    else:
        raise TypeError(f"{name}: expected an activation name ({', '.join(KINDS)}) or "
                        f"('hard_sigmoid', alpha, beta), got {value!r}")
    if kind not in KINDS:
        raise ValueError(f"{name}: unknown activation {kind!r}; eigengru has "
                         f"{', '.join(KINDS)}")
    if kind != "hard_sigmoid":
        if params:
            raise ValueError(f"{name}: {kind} takes no parameters, got {params}")
        return kind
    params = params or HARD_SIGMOID_DEFAULTS
    if len(params) != 2:
        raise ValueError(f"{name}: hard_sigmoid takes (alpha, beta), got {params}")
    try:
        alpha, beta = (float(p) for p in params)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: hard_sigmoid's alpha and beta must be numbers, "
                        f"got {params}") from None
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise ValueError(f"{name}: hard_sigmoid's alpha and beta must be finite, got {params}")
    return ("hard_sigmoid", alpha, beta)


def clip_bound(value: Any) -> float | None:
    """None (no clip) or a finite positive float."""
    if value is None:
        return None
    try:
        bound = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"clip: expected a positive number or None, got {value!r}") from None
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"clip: expected a finite positive number or None, got {value!r}")
    return bound


def changed(functions: tuple[Activation, Activation, float | None]) -> dict[str, Any]:
    """The functions that differ from the standard ones, by constructor argument."""
    names = ("gate_activation", "candidate_activation", "clip")
    return {k: v for k, v, standard in zip(names, functions, STANDARD) if v != standard}


def core_functions(gate: Activation, candidate: Activation,
                   clip: float | None) -> tuple[Any, ...] | None:
    """The core's form of normalised functions, None for the standard ones."""
    if (gate, candidate, clip) == STANDARD:
        return None

    def entry(a: Activation) -> tuple[int, float, float]:
        return (KINDS[a], 0.0, 0.0) if isinstance(a, str) else (KINDS[a[0]], a[1], a[2])

    return (entry(gate), entry(candidate), clip or 0.0)


def from_core(kinds: tuple[int, int], values: tuple[float, ...]) -> tuple[Activation, Activation,
                                                                          float | None]:
    """(gate, candidate, clip) from the core's kinds and (gate alpha, beta, candidate alpha,
    beta, clip), as a model file stores them; ValueError for unknown kinds, parameters where a
    kind takes none, and a clip that is negative or not a number."""
    names = {v: k for k, v in KINDS.items()}
    if any(k not in names for k in kinds):
        raise ValueError(f"unknown activation kind in {kinds}")
    if not values[4] >= 0:
        raise ValueError(f"clip {values[4]} is negative or not a number")

    def made(kind: int, alpha: float, beta: float) -> Activation:
        if names[kind] == "hard_sigmoid":
            return (names[kind], alpha, beta)
        if alpha or beta:
            raise ValueError(f"{names[kind]} takes no parameters, got {(alpha, beta)}")
        return names[kind]

    gate = made(kinds[0], values[0], values[1])
    candidate = made(kinds[1], values[2], values[3])
    return gate, candidate, values[4] if values[4] > 0 else None
