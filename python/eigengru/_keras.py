"""Keras GRU layers to eigengru (``eigengru.interop.from_keras``): from their weights, or from
the layer itself (or its config and weights), whose every setting is applied or refused by
name. Keras itself is never imported here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._checks import shape_text
from ._imported_arrays import as_numpy, dtype_of, zr_to_rz
from .gru import GRU

#: GRU config entries that do not change what the layer computes from its weights and inputs
#: (zero_output_for_mask acts on masked steps, and eigengru takes no mask).
_NO_EFFECT = {"name", "trainable", "dtype", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "return_sequences", "return_state", "unroll", "seed",
              "use_cudnn", "implementation", "time_major", "zero_output_for_mask"}
#: Entries that act in training only and that eigengru does not apply: they must be unset.
_TRAINING_ONLY = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                  "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                  "bias_constraint"}
#: Entries eigengru applies only at these values.
_REQUIRED = {"stateful": False}
#: Keras's activation names that eigengru computes, with eigengru's names.
_ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
                "hard_sigmoid": "hard_sigmoid"}
#: Keras 3's hard sigmoid, relu6(x + 3) / 6: alpha 1/6, beta 0.5.
KERAS3_HARD_SIGMOID = (1.0 / 6.0, 0.5)


def _activation(value: Any, key: str, where: str, hard_sigmoid: tuple[float, float]) -> Any:
    """eigengru's form of a Keras activation setting (a name), or ValueError naming it."""
    name = value if isinstance(value, str) else None
    if name not in _ACTIVATIONS:
        raise ValueError(f"from_keras: {where}{key} = {value!r} is not supported (eigengru "
                         f"has {', '.join(_ACTIVATIONS)})")
    return ("hard_sigmoid", *hard_sigmoid) if name == "hard_sigmoid" else name


def _layer_state(kernel: Any, recurrent_kernel: Any, bias: Any, reset_after: bool,
                 name: str) -> tuple[dict[str, np.ndarray], int, int, np.ndarray]:
    """One direction's parameters, named with `name` (``l0`` or ``l0_reverse``), from a Keras
    GRU's weights; also the input size, the hidden size and the recurrent kernel."""
    kernel, recurrent = as_numpy(kernel), as_numpy(recurrent_kernel)
    if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0]:
        raise ValueError("from_keras: recurrent_kernel: expected shape (H, 3H), got "
                         f"{shape_text(recurrent.shape)}")
    hidden = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * hidden:
        raise ValueError(f"from_keras: kernel: expected shape (input_size, {3 * hidden}), got "
                         f"{shape_text(kernel.shape)}")
    state = {f"weight_ih_{name}": zr_to_rz(kernel.T, hidden),
             f"weight_hh_{name}": zr_to_rz(recurrent.T, hidden)}
    if bias is not None:
        bias = as_numpy(bias)
        expected = (2, 3 * hidden) if reset_after else (3 * hidden,)
        if bias.shape != expected:
            raise ValueError(f"from_keras: bias: expected shape {shape_text(expected)} with "
                             f"reset_after={reset_after}, got {shape_text(bias.shape)}")
        input_bias, recurrent_bias = ((bias[0], bias[1]) if reset_after
                                      else (bias, np.zeros_like(bias)))
        state[f"bias_ih_{name}"] = zr_to_rz(input_bias, hidden)
        state[f"bias_hh_{name}"] = zr_to_rz(recurrent_bias, hidden)
    return state, kernel.shape[0], hidden, recurrent


def _checked_config(config: Mapping[str, Any], go_backwards: bool | None, where: str,
                    hard_sigmoid: tuple[float, float]) -> dict[str, Any]:
    """units, use_bias, reset_after, go_backwards and the activations of a GRU layer's config,
    whose other entries must be ones eigengru applies (or that change nothing); go_backwards
    must be as given unless that is None."""
    for key in sorted(config):
        value = config[key]
        if key in _NO_EFFECT or key in ("units", "use_bias", "reset_after", "go_backwards",
                                        "activation", "recurrent_activation", "dropout",
                                        "recurrent_dropout"):
            continue
        if key in _TRAINING_ONLY:
            if value is not None:
                raise ValueError(f"from_keras: {where}{key} = {value!r} is not supported "
                                 "(eigengru applies no regularizers or constraints)")
        elif key in _REQUIRED:
            if value != _REQUIRED[key]:
                raise ValueError(f"from_keras: {where}{key} = {value!r} is not supported "
                                 f"(eigengru computes {key} = {_REQUIRED[key]!r})")
        else:
            raise ValueError(f"from_keras: {where}{key} is not a GRU setting eigengru knows")
    backwards = bool(config.get("go_backwards", False))
    if go_backwards is not None and backwards != go_backwards:
        raise ValueError(f"from_keras: {where}go_backwards = {backwards!r} is not the "
                         f"Bidirectional layer's {'backward' if go_backwards else 'forward'} "
                         "direction")
    return {"units": int(config["units"]), "use_bias": bool(config.get("use_bias", True)),
            "reset_after": bool(config.get("reset_after", True)), "go_backwards": backwards,
            "gate_activation": _activation(config.get("recurrent_activation", "sigmoid"),
                                           "recurrent_activation", where, hard_sigmoid),
            "candidate_activation": _activation(config.get("activation", "tanh"), "activation",
                                                where, hard_sigmoid),
            "input_dropout": float(config.get("dropout", 0.0)),
            "recurrent_dropout": float(config.get("recurrent_dropout", 0.0))}


def _inner_config(value: Any) -> Mapping[str, Any]:
    """A sublayer's config from a Bidirectional config: a serialized layer or a layer."""
    if hasattr(value, "get_config"):
        value = {"class_name": type(value).__name__, "config": value.get_config()}
    if not isinstance(value, Mapping) or value.get("class_name") != "GRU":
        name = value.get("class_name") if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"from_keras: Bidirectional wraps a {name}; only a GRU is supported")
    return value["config"]


def _from_layer(config: Mapping[str, Any], weights: Sequence[Any], class_name: str,
                dtype: Any, hard_sigmoid: tuple[float, float]) -> GRU:
    if class_name == "GRU":
        parts = [("l0", _checked_config(config, None, "", hard_sigmoid))]
    elif class_name == "Bidirectional":
        if config.get("merge_mode", "concat") != "concat":
            raise ValueError(f"from_keras: Bidirectional merge_mode = {config['merge_mode']!r} "
                             "is not supported (eigengru concatenates the two directions)")
        backward = config.get("backward_layer") or config["layer"]
        parts = [("l0", _checked_config(_inner_config(config["layer"]), False, "forward ",
                                        hard_sigmoid)),
                 ("l0_reverse",
                  _checked_config(_inner_config(backward), config.get("backward_layer") is not None,
                                  "backward ", hard_sigmoid))]
        for key in sorted(set(config) - {"name", "trainable", "dtype", "layer", "merge_mode",
                                         "backward_layer", "weights"}):
            raise ValueError(f"from_keras: Bidirectional {key} is not a setting eigengru knows")
    else:
        raise ValueError(f"from_keras: expected a keras GRU or Bidirectional(GRU) layer, got "
                         f"{class_name}")
    settings = parts[0][1]
    if any({**p[1], "go_backwards": False} != {**settings, "go_backwards": False}
           for p in parts[1:]):
        raise ValueError("from_keras: the two directions of a Bidirectional layer must have the "
                         "same units, use_bias, reset_after, activations and dropout")
    per = 3 if settings["use_bias"] else 2
    if len(weights) != per * len(parts):
        raise ValueError(f"from_keras: expected {per * len(parts)} weight arrays for this layer, "
                         f"got {len(weights)}")
    state: dict[str, np.ndarray] = {}
    for k, (name, _) in enumerate(parts):
        w = [*weights[k * per:(k + 1) * per], None]
        part, input_size, hidden, recurrent = _layer_state(w[0], w[1], w[2],
                                                            settings["reset_after"], name)
        state |= part
    if hidden != settings["units"]:
        raise ValueError(f"from_keras: units = {settings['units']} but the weights have "
                         f"{hidden} units")
    gru = GRU(input_size, hidden, bias=settings["use_bias"], batch_first=True,
              bidirectional=len(parts) == 2, reset_after=settings["reset_after"],
              reverse=len(parts) == 1 and settings["go_backwards"],
              gate_activation=settings["gate_activation"],
              candidate_activation=settings["candidate_activation"],
              input_dropout=settings["input_dropout"],
              recurrent_dropout=settings["recurrent_dropout"],
              dtype=dtype_of(dtype, recurrent))
    gru.load_state_dict(state)
    return gru


def from_keras(kernel_or_layer: Any, recurrent_kernel: Any = None, bias: Any = None, *,
               reset_after: bool = True, dtype: Any = None,
               hard_sigmoid: tuple[float, float] = KERAS3_HARD_SIGMOID) -> GRU:
    """A GRU from a Keras GRU layer.

    ``from_keras(layer)`` takes a ``keras.layers.GRU`` or ``keras.layers.Bidirectional(GRU)``,
    and ``from_keras(config, weights)`` the same from a saved model (``layer.get_config()``, or
    ``{"class_name": ..., "config": ...}``, and ``layer.get_weights()``). Units, ``use_bias``,
    ``reset_after``, ``activation`` and ``recurrent_activation`` (sigmoid, tanh, relu,
    hard_sigmoid), ``dropout`` and ``recurrent_dropout`` (as ``input_dropout`` and
    ``recurrent_dropout``, one mask per sequence shared by the gates, where Keras with
    recurrent dropout draws one per gate) are read from the config, and every other setting is
    applied or refused by name (other activations, merge modes other than concat,
    regularizers, constraints). ``hard_sigmoid`` is Keras 3's, ``clip(x / 6 + 0.5, 0, 1)``; a
    model made with Keras 2, whose hard sigmoid was ``clip(0.2 x + 0.5, 0, 1)``, needs
    ``hard_sigmoid=(0.2, 0.5)`` (alpha, beta). The model is batch-first, as Keras is.
    ``go_backwards=True`` gives a ``reverse=True`` model: the same states, but its ``out`` is in
    time order, where Keras returns the sequence in the order it processed it
    (``out[:, ::-1]`` is Keras's).

    ``from_keras(kernel, recurrent_kernel, bias, reset_after=True)`` takes bare weights:
    kernel ``(I, 3H)`` and recurrent_kernel ``(H, 3H)`` in Keras's (z, r, h) order; bias
    ``(2, 3H)`` with ``reset_after=True``, ``(3H,)`` without, or None; the default activations
    are assumed, and the model is time-major. ``dtype`` defaults to the weights' own.
    """
    layer = kernel_or_layer
    if hasattr(layer, "get_config") and hasattr(layer, "get_weights"):
        return _from_layer(layer.get_config(), layer.get_weights(), type(layer).__name__, dtype,
                           hard_sigmoid)
    if isinstance(layer, Mapping):
        config = layer.get("config", layer)
        class_name = layer.get("class_name", "Bidirectional" if "layer" in config else "GRU")
        if recurrent_kernel is None:
            raise ValueError("from_keras: a config needs its weights (layer.get_weights())")
        return _from_layer(config, recurrent_kernel, class_name, dtype, hard_sigmoid)
    state, input_size, hidden, recurrent = _layer_state(layer, recurrent_kernel, bias,
                                                        reset_after, "l0")
    gru = GRU(input_size, hidden, bias=bias is not None, reset_after=reset_after,
              dtype=dtype_of(dtype, recurrent))
    gru.load_state_dict(state)
    return gru
