"""The ``GRU`` module on NumPy arrays: torch.nn.GRU's computation, forward and backward."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core, egru_file, nonlinearities
from ._atomic import replace_atomically
from ._checks import (
    check_shape,
    dropout_probability,
    model_dtype,
    positive_int,
    real_array,
)
from ._sequences import sequence_inputs, user_layout
from .parameters import NamedParameters, layer_parameters
from .quantized import QuantizedGRU, quantize
from .stream import Stream

_CACHES = {np.dtype(np.float32): _core.TrainingCacheFloat32,
           np.dtype(np.float64): _core.TrainingCacheFloat64}
_STACK_STEPS = {np.dtype(np.float32): _core.StackStepFloat32,
                np.dtype(np.float64): _core.StackStepFloat64}
_FILE_FORMAT = "eigengru.GRU"
_FILE_VERSION = 1
_CONFIG_KEY = "__eigengru_config__"


class GRU(NamedParameters):
    """A stack of GRU layers with ``torch.nn.GRU``'s arguments, parameter names, shapes, gate order
    (r, z, n), initialisation and input/output conventions, on NumPy arrays.

    ``reset_after=True`` is PyTorch's and cuDNN's formulation,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``reset_after=False`` is the original one of
    Cho et al. (2014), ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``. Both then update
    ``h' = (1 - z) * n + z * h``.

    ``reverse=True`` runs each layer of a unidirectional stack backwards in time only (ONNX's
    ``direction="reverse"``, Keras's ``go_backwards``): each row's sequence runs from its own last
    valid step to its first, the outputs stay in time order (``out[t]`` is the state at time t,
    ``out[0]`` the last one made), and ``h_n`` is the state after time 0.

    ``gate_activation`` (r and z, default ``"sigmoid"``), ``candidate_activation`` (n, default
    ``"tanh"``) and ``clip`` (None, or c: every pre-activation clamped to [-c, c] first) are
    ONNX's ``activations`` and ``clip``; see ``eigengru.nonlinearities`` for the names. They
    apply in every pass, training included; the one-step paths of the standard functions are
    faster.

    ``input_dropout`` and ``recurrent_dropout`` are per-sequence (variational) dropout, in
    training only: each training forward draws, for every layer-direction and every sequence of
    the batch, one mask of the layer's input and one of its state, kept for all steps and shared
    by the three gates (Keras's ``dropout`` and ``recurrent_dropout``, with Keras's masks for
    the gates made equal). The state's mask applies where the state enters the recurrent
    product, not in the update ``z * h``. ``dropout`` (PyTorch's, a fresh mask at every step
    between layers) applies as well when given.

    Parameters are NumPy arrays reached as attributes named as in PyTorch (``weight_ih_l0``
    (3H, I), ``weight_hh_l0`` (3H, H), ``bias_ih_l0``, ``bias_hh_l0`` (3H,), then ``_l1`` ... and
    ``_reverse`` for the backward direction); editing one in place changes the model, and
    assigning an array of the same shape replaces it (converted to the model's dtype). One
    exception: one-step inference calls (one time step, the loops of sampling and control) run
    weights packed at the first such call and again after a parameter is assigned,
    after ``load_state_dict``, after every ``backward`` (an optimiser updates the weights in
    place next) and after ``repack()``: call that after editing a parameter in place outside
    training, as for ``GRUCell``. All start
    uniform in (-1/sqrt(H), 1/sqrt(H)), drawn in PyTorch's order from
    ``numpy.random.default_rng(seed)``, which also draws the dropout masks.

    Inputs: ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``; real
    floating-point and integer arrays are converted to the model's dtype, other dtypes refused.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        reset_after: bool = True,
        dtype: Any = np.float32,
        seed: int | None = None,
        reverse: bool = False,
        gate_activation: Any = "sigmoid",
        candidate_activation: Any = "tanh",
        clip: Any = None,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        state = self.__dict__
        state["input_size"] = positive_int(input_size, "input_size")
        state["hidden_size"] = positive_int(hidden_size, "hidden_size")
        state["num_layers"] = positive_int(num_layers, "num_layers")
        state["bias"] = bool(bias)
        state["batch_first"] = bool(batch_first)
        state["dropout"] = dropout_probability(dropout)
        state["bidirectional"] = bool(bidirectional)
        state["reset_after"] = bool(reset_after)
        state["reverse"] = bool(reverse)
        state["gate_activation"] = nonlinearities.activation(gate_activation, "gate_activation")
        state["candidate_activation"] = nonlinearities.activation(candidate_activation,
                                                                  "candidate_activation")
        state["clip"] = nonlinearities.clip_bound(clip)
        state["input_dropout"] = dropout_probability(input_dropout, "input_dropout")
        state["recurrent_dropout"] = dropout_probability(recurrent_dropout, "recurrent_dropout")
        if self.reverse and self.bidirectional:
            raise ValueError("reverse: for one direction; a bidirectional GRU already runs both "
                             "ways")
        state["dtype"] = model_dtype(dtype)
        state["_spec"] = self._core_spec()
        state["_layers"] = layer_parameters(self.input_size, self.hidden_size, self.num_layers,
                                            self.bidirectional, self.bias)
        state["_shapes"] = {name: shape for layer in self._layers for name, shape in layer.items()}
        bound = 1.0 / np.sqrt(self.hidden_size)
        rng = np.random.default_rng(seed)
        state["_rng"] = rng
        state["_params"] = {
            name: rng.uniform(-bound, bound, shape).astype(self.dtype)
            for name, shape in self._shapes.items()
        }
        state["grads"] = {name: np.zeros_like(p) for name, p in self._params.items()}
        state["_pending"] = None  # (cache, how the input was laid out) of the last training forward
        state["_spare"] = None  # a consumed cache whose memory the next training forward reuses
        state["_stack_step"] = None  # the stack packed for one-step calls, made at the first one

    # -- pickle and copy ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The model for pickle and copy: configuration, parameters, accumulated gradients and
        the random generator. Not the core's stack description (rebuilt on load) nor a training
        forward's cache: a copy starts with no forward awaiting its backward."""
        state = super().__getstate__()
        del state["_spec"]
        state["_pending"] = state["_spare"] = state["_stack_step"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles from before reverse, the functions and per-sequence dropout existed
        super().__setstate__({"reverse": False, "gate_activation": "sigmoid",
                              "candidate_activation": "tanh", "clip": None, "input_dropout": 0.0,
                              "recurrent_dropout": 0.0} | state)
        self.__dict__["_spec"] = self._core_spec()

    def _core_spec(self) -> Any:
        return _core.StackSpec(self.input_size, self.hidden_size, self.num_layers,
                               self.bidirectional, self.reset_after, self.dropout, self.reverse,
                               nonlinearities.core_functions(*self.functions),
                               self.input_dropout, self.recurrent_dropout)

    @property
    def functions(self) -> tuple[Any, Any, float | None]:
        """(gate_activation, candidate_activation, clip)."""
        return (self.gate_activation, self.candidate_activation, self.clip)

    def _parameters_changed(self) -> None:
        self.__dict__["_stack_step"] = None

    def repack(self) -> None:
        """Pack the parameters again at the next one-step call (after editing one in place)."""
        self._parameters_changed()

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _layer_names(self) -> Iterator[tuple[str, ...]]:
        """The parameter names of each layer-direction, in PyTorch's order."""
        for layer in self._layers:
            yield tuple(layer)

    # -- compute ------------------------------------------------------------------------------
    def __call__(self, x: Any, h0: Any = None, *,
                 lengths: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Inference: ``out, h_n = gru(x, h0, lengths=None)``; see ``forward``."""
        return self.forward(x, h0, lengths=lengths)

    def forward(
        self, x: Any, h0: Any = None, *, lengths: Any = None, train: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the stack over a batch of sequences.

        x: ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``.
        h0: ``(L*D, B, H)`` (``(L*D, H)`` unbatched), or None for zeros.
        lengths: one integer per batch row in [1, T], or None: outputs past a row's length are
        zero, ``h_n`` holds each row's state after its own last step, and the reverse direction
        starts there (PyTorch's packed-sequence semantics).
        Returns ``out`` ``(T, B, D*H)`` (``(B, T, D*H)`` with ``batch_first``, ``(T, D*H)``
        unbatched) and ``h_n`` ``(L*D, B, H)`` (``(L*D, H)`` unbatched).
        With ``train=True`` dropout applies between layers and the model keeps what
        ``backward`` needs (one backward per forward).
        """
        if not train and lengths is None:
            stepped = self._loop_step(x, h0)
            if stepped is not None:
                return stepped
        x, h0, lengths, unbatched = sequence_inputs(self, x, h0, lengths)
        if len(x) == 1 and not train and lengths is None:
            return self._one_step(x, h0, unbatched)
        layers = self._layer_weights()
        if train:
            # The new forward fills the spare cache, so that the pending one (if any) is kept
            # should this call fail; on success the pending one becomes the spare.
            cache = self._spare if self._spare is not None else _CACHES[self.dtype]()
            dropout_seed = int(self._rng.integers(0, 2**63))
            out, h_n = _core.forward_training(self._spec, layers, x, h0, lengths, dropout_seed,
                                              cache)
            pending = self._pending
            self.__dict__["_spare"] = pending[0] if pending is not None else None
            self.__dict__["_pending"] = (cache, unbatched)
        else:
            out, h_n = _core.forward(self._spec, layers, x, h0, lengths)
        return self._user_layout(out, unbatched), (h_n[:, 0] if unbatched else h_n)

    def sequence_dropout_masks(self) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """The per-sequence dropout masks that the training forward awaiting its backward drew:
        for each layer-direction in PyTorch's order, ``(input mask (B, layer input size),
        recurrent mask (B, H))``, each None when that dropout is off; entries are 0 or
        ``1 / (1 - p)``."""
        if self._pending is None or not self._pending[0].ready:
            raise RuntimeError("sequence_dropout_masks: no training forward awaits its backward")
        return [tuple(m) for m in self._pending[0].sequence_dropout_masks()]

    def backward(self, grad_out: Any, grad_h_n: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Backpropagate through the last ``forward(..., train=True)``, which it consumes.

        grad_out: dL/d out, shaped as ``out`` was, or None for zeros. grad_h_n: dL/d h_n, shaped
        as ``h_n`` was, or None for zeros. Returns ``dx`` and ``dh0`` shaped as ``x`` and ``h0``,
        and adds the parameter gradients into ``grads``. Weights replaced or edited after that
        forward do not matter: the gradient is that of the forward that ran.
        """
        if self._pending is None or not self._pending[0].ready:
            raise RuntimeError(
                "backward: no training forward to differentiate; call "
                "forward(x, train=True) first (each forward allows one backward)"
            )
        cache, unbatched = self._pending
        steps, batch, hidden = cache.steps, cache.batch, self.hidden_size
        stacked = self.num_layers * self.directions
        if grad_out is not None:
            grad_out = real_array(grad_out, "grad_out", self.dtype)
            expected = self._user_layout(np.empty((steps, batch, self.directions * hidden)),
                                         unbatched).shape
            check_shape(grad_out, "grad_out", expected, "out's shape")
            if unbatched:
                grad_out = grad_out[:, np.newaxis, :]
            elif self.batch_first:
                grad_out = np.ascontiguousarray(grad_out.transpose(1, 0, 2))
        if grad_h_n is not None:
            grad_h_n = real_array(grad_h_n, "grad_h_n", self.dtype)
            expected = (stacked, hidden) if unbatched else (stacked, batch, hidden)
            check_shape(grad_h_n, "grad_h_n", expected, "h_n's shape")
            if unbatched:
                grad_h_n = np.ascontiguousarray(grad_h_n[:, np.newaxis, :])
        grads = [tuple(self.grads[name] for name in names) for names in self._layer_names()]
        dx, dh0 = _core.backward(cache, grad_out, grad_h_n, grads)
        self.__dict__["_pending"] = None
        self.__dict__["_spare"] = cache
        self.__dict__["_stack_step"] = None  # an optimiser step is likely before the next call
        return self._user_layout(dx, unbatched), (dh0[:, 0] if unbatched else dh0)

    def _loop_step(self, x: Any, h0: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """The call of a step loop, one step of a batch, with no checks but the core's: None
        where it does not apply or the core refuses the arrays (a dtype to convert, a shape to
        explain), and the general path then takes the call."""
        try:
            if x.ndim != 3 or x.shape[1 if self.batch_first else 0] != 1:
                return None
            return self._stepper().forward(x, h0)  # out shaped as x, (1, B, D*H) or (B, 1, D*H)
        except (AttributeError, TypeError, ValueError):
            return None

    def _one_step(self, x: np.ndarray, h0: np.ndarray | None,
                  unbatched: bool) -> tuple[np.ndarray, np.ndarray]:
        """One time step in inference, x (1, B, I), through the stack packed for single steps (C++
        ``StackStep``): a training forward's numbers bit for bit, at any thread count."""
        out, h_n = self._stepper().forward(x, h0)  # new arrays, (1, B, D*H) and (L*D, B, H)
        return self._user_layout(out, unbatched), (h_n[:, 0] if unbatched else h_n)

    def _stepper(self) -> Any:
        stepper = self._stack_step
        if stepper is None:
            stepper = _STACK_STEPS[self.dtype](self._spec, self._layer_weights())
            self.__dict__["_stack_step"] = stepper
        return stepper

    def stream(self, batch: int = 1) -> Stream:
        """A ``Stream`` of this (unidirectional) model over ``batch`` sequences: one time step
        per ``step`` call, the state kept between calls. It holds a packed copy of the weights
        as they are now; later changes to this model's weights do not reach it."""
        return Stream(self, batch)

    def _user_layout(self, sequence: np.ndarray, unbatched: bool) -> np.ndarray:
        return user_layout(sequence, unbatched, self.batch_first)

    def _layer_weights(self) -> list[tuple[Any, ...]]:
        p = self._params
        return [tuple(p[name] for name in names) + ((None, None) if not self.bias else ())
                for names in self._layer_names()]

    # -- files --------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model's shape."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "bias": self.bias,
                "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional, "reset_after": self.reset_after,
                "dtype": self.dtype.name} | ({"reverse": True} if self.reverse else {}) | \
            {k: v for k, v in (("input_dropout", self.input_dropout),
                               ("recurrent_dropout", self.recurrent_dropout)) if v} | \
            {k: list(v) if isinstance(v, tuple) else v  # JSON's form
             for k, v in self._changed_functions().items()}

    def _changed_functions(self) -> dict[str, Any]:
        return nonlinearities.changed(self.functions)

    def quantize(self, precision: str) -> QuantizedGRU:
        """An inference-only copy of this model with its weight matrices in ``"bfloat16"`` or
        ``"int8"`` (see ``QuantizedGRU``); later changes to this model do not reach it."""
        return quantize(self, precision)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model (config and weights) to a file, without pickle.

        ``.egru`` paths get the simple binary format that the C++ core reads
        (``eigengru::load_model``, see ``egru_file``); any other path gets a ``.npz`` archive:
        one array per parameter, named as in ``state_dict()``, and ``__eigengru_config__``, a
        JSON string with ``format``, ``version`` and the constructor arguments.
        The file is written under a temporary name, flushed to disk and renamed into place, so
        an interrupted save never leaves a truncated file where the old one was.
        """
        path = os.fspath(path)

        def write(temporary: str) -> None:
            with open(temporary, "wb") as f:
                if path.endswith(".egru"):
                    f.write(egru_file.encode(self.config(), self.state_dict()))
                else:
                    config = {"format": _FILE_FORMAT, "version": _FILE_VERSION} | self.config()
                    np.savez(f, **({_CONFIG_KEY: np.array(json.dumps(config))} |
                                   self.state_dict()))

        replace_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GRU:
        """Read a model written by ``save`` (either format); a file that is not one, or is
        damaged, raises ValueError."""
        path = os.fspath(path)
        with open(path, "rb") as f:  # our handle: np.load leaks its own on a corrupt file
            if f.read(len(egru_file.MAGIC)) == egru_file.MAGIC:
                f.seek(0)
                config, arrays = egru_file.decode(f.read(), path)
            else:
                f.seek(0)
                config, arrays = _read_npz(f, path)
        arguments = {k: v for k, v in config.items() if k not in ("format", "version")}
        try:
            model = cls(**arguments)
        except TypeError as error:
            raise ValueError(f"{path}: bad model configuration ({error})") from None
        model.load_state_dict(arrays)
        return model

    def __repr__(self) -> str:
        extras = "".join(
            f", {k}={v}" for k, v in (("num_layers", self.num_layers), ("bias", self.bias),
                                      ("batch_first", self.batch_first),
                                      ("dropout", self.dropout),
                                      ("bidirectional", self.bidirectional),
                                      ("reverse", self.reverse),
                                      ("input_dropout", self.input_dropout),
                                      ("recurrent_dropout", self.recurrent_dropout))
            if v != {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                     "bidirectional": False, "reverse": False, "input_dropout": 0.0,
                     "recurrent_dropout": 0.0}[k])
        extras += "".join(f", {k}={v!r}" for k, v in self._changed_functions().items())
        return (f"GRU({self.input_size}, {self.hidden_size}{extras}, "
                f"reset_after={self.reset_after}, dtype={self.dtype.name})")


def _read_npz(f, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(f, allow_pickle=False) as archive:
            config = json.loads(str(archive[_CONFIG_KEY][()]))
            arrays = {name: archive[name] for name in archive.files if name != _CONFIG_KEY}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{path}: not a readable eigengru model file ({error})") from None
    if not isinstance(config, dict) or config.get("format") != _FILE_FORMAT:
        raise ValueError(f"{path}: not an eigengru model file")
    if config.get("version") != _FILE_VERSION:
        raise ValueError(f"{path}: model file version {config.get('version')} is not "
                         f"supported (this eigengru reads version {_FILE_VERSION})")
    return config, arrays
