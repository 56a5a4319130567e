"""The ``.egru`` model format: a simple binary file that the C++ core reads with no dependency
(``eigengru::load_model``). Layout (little-endian), as in ``cpp/include/eigengru/model_file.hpp``:
"EIGENGRU", u32 version 1, u32 scalar size (4 or 8), u32 input_size, hidden_size, num_layers,
u32 flags (1 bias, 2 bidirectional, 4 reset_after, 8 batch_first, 16 reverse, 32 functions,
64 per-sequence dropout), f64 dropout, with flag 64 f64 input_dropout and recurrent_dropout,
with flag 32 the functions (i32 gate kind, i32 candidate kind, f64 gate alpha, beta, candidate
alpha, beta, clip), the parameters in PyTorch's order (row-major), and the zlib CRC-32
of everything before it as u32."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from . import nonlinearities
from .parameters import layer_parameters

MAGIC = b"EIGENGRU"
VERSION = 1
QUANTIZED_VERSION = 2  # written and read by the core: see eigengru.QuantizedGRU
_HEADER = struct.Struct("<8sIIIIIId")
_FUNCTIONS = struct.Struct("<ii5d")
_FUNCTIONS_FLAG = 32
_SEQUENCE_DROPOUT = struct.Struct("<dd")
_SEQUENCE_DROPOUT_FLAG = 64


def encode(config: dict[str, Any], state: dict[str, np.ndarray]) -> bytes:
    dtype = np.dtype(config["dtype"])
    flags = (1 * config["bias"] | 2 * config["bidirectional"] | 4 * config["reset_after"]
             | 8 * config["batch_first"] | 16 * config.get("reverse", False))
    functions = nonlinearities.core_functions(
        *(nonlinearities.activation(config.get(k, v), k) if k != "clip" else config.get(k)
          for k, v in zip(("gate_activation", "candidate_activation", "clip"),
                          nonlinearities.STANDARD)))
    if functions is not None:
        flags |= _FUNCTIONS_FLAG
    sequence_dropout = (config.get("input_dropout", 0.0), config.get("recurrent_dropout", 0.0))
    if any(sequence_dropout):
        flags |= _SEQUENCE_DROPOUT_FLAG
    parts = [_HEADER.pack(MAGIC, VERSION, dtype.itemsize, config["input_size"],
                          config["hidden_size"], config["num_layers"], flags, config["dropout"])]
    if any(sequence_dropout):
        parts.append(_SEQUENCE_DROPOUT.pack(*sequence_dropout))
    if functions is not None:
        (gate, ga, gb), (candidate, ca, cb), clip = functions
        parts.append(_FUNCTIONS.pack(gate, candidate, ga, gb, ca, cb, clip))
    parts += [np.ascontiguousarray(p, dtype=dtype.newbyteorder("<")).tobytes()
              for p in state.values()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def decode(data: bytes, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(config, state) from a file's bytes. Raises ValueError naming ``path`` on anything
    malformed."""
    if len(data) < _HEADER.size + 4 or not data.startswith(MAGIC):
        raise ValueError(f"{path}: not an eigengru model file")
    _, version, size, inputs, hidden, layers, flags, dropout = _HEADER.unpack_from(data)
    if version == QUANTIZED_VERSION:
        raise ValueError(f"{path}: a quantized model; read it with eigengru.QuantizedGRU.load")
    if version != VERSION:
        raise ValueError(f"{path}: model file version {version} is not supported (this "
                         f"eigengru reads version {VERSION})")
    if size not in (4, 8) or flags > 127 or flags & 18 == 18:
        raise ValueError(f"{path}: not a readable eigengru model file (bad header)")
    (stored,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != stored:
        raise ValueError(f"{path}: not a readable eigengru model file (checksum mismatch: "
                         "damaged or truncated)")
    config = {"input_size": inputs, "hidden_size": hidden, "num_layers": layers,
              "bias": bool(flags & 1), "bidirectional": bool(flags & 2),
              "reset_after": bool(flags & 4), "batch_first": bool(flags & 8),
              "reverse": bool(flags & 16),
              "dropout": dropout, "dtype": "float32" if size == 4 else "float64"}
    at = _HEADER.size
    if flags & _SEQUENCE_DROPOUT_FLAG:
        if at + _SEQUENCE_DROPOUT.size > len(data) - 4:
            raise ValueError(f"{path}: not a readable eigengru model file (truncated)")
        config["input_dropout"], config["recurrent_dropout"] = \
            _SEQUENCE_DROPOUT.unpack_from(data, at)
        at += _SEQUENCE_DROPOUT.size
    if flags & _FUNCTIONS_FLAG:
        config |= _decoded_functions(data, at, path)
        at += _FUNCTIONS.size
    dtype = np.dtype(config["dtype"]).newbyteorder("<")
    state = {}
    shapes = layer_parameters(inputs, hidden, layers, config["bidirectional"], config["bias"])
    for name, shape in (item for layer in shapes for item in layer.items()):
        count = int(np.prod(shape))
        if at + count * size > len(data) - 4:
            raise ValueError(f"{path}: not a readable eigengru model file (truncated)")
        state[name] = np.frombuffer(data, dtype, count, at).reshape(shape)
        at += count * size
    if at != len(data) - 4:
        raise ValueError(f"{path}: not a readable eigengru model file (unexpected length)")
    return config, state


def _decoded_functions(data: bytes, at: int, path: str) -> dict[str, Any]:
    """The constructor arguments of a functions block."""
    if at + _FUNCTIONS.size > len(data) - 4:
        raise ValueError(f"{path}: not a readable eigengru model file (truncated)")
    gate, candidate, *values = _FUNCTIONS.unpack_from(data, at)
    try:
        kinds = nonlinearities.from_core((gate, candidate), tuple(values))
    except ValueError as error:
        raise ValueError(f"{path}: not a readable eigengru model file ({error})") from None
    return dict(zip(("gate_activation", "candidate_activation", "clip"), kinds))
