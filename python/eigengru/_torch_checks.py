"""What ``eigengru.torch.GRU`` and ``eigengru.torch.GRUCell`` both check and convert: their
arguments, the tensors they are called with, and tensors as the NumPy arrays the core reads.
``module`` is the class's public name, which every message starts from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._checks import positive_int

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def array(tensor: torch.Tensor | None) -> np.ndarray | None:
    """A NumPy view of a CPU tensor (a copy only if it is not contiguous)."""
    if tensor is None:
        return None
    return tensor.detach().contiguous().numpy()


def layer_tuples(flat: Any, bias: bool) -> list[tuple[Any, ...]]:
    """Flat per-layer weights (w_ih, w_hh[, b_ih, b_hh]) ... as the core's 4-tuples of arrays
    (None for the biases of a model without them)."""
    per = 4 if bias else 2
    groups = [tuple(flat[k : k + per]) for k in range(0, len(flat), per)]
    arrays = [tuple(array(w) if isinstance(w, torch.Tensor) else w for w in g) for g in groups]
    return [g if bias else (*g, None, None) for g in arrays]


def numpy_dtype(dtype: torch.dtype) -> type:
    return DTYPES[dtype]


def constructor_arguments(module: str, device: Any, dtype: Any,
                          sizes: dict[str, Any]) -> torch.dtype:
    """The dtype the module computes in (torch's default when None), after checking the device,
    the dtype and that each of ``sizes`` is a positive integer."""
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"{module} runs on the CPU; got device={device}")
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    check_dtype(module, dtype, "dtype")
    for name, value in sizes.items():
        positive_int(value, name)  # the NumPy classes' check: the same error for the same mistake
    return dtype


def check_dtype(module: str, dtype: Any, name: str) -> None:
    if dtype not in DTYPES:
        raise TypeError(f"{name}: {module} supports torch.float32 and torch.float64, "
                        f"got {dtype}")


def check_parameter_dtype(module: str, dtype: torch.dtype) -> None:
    """Parameters converted by ``.half()`` or ``.to(torch.bfloat16)`` are refused at the call."""
    if dtype not in DTYPES:
        raise TypeError(f"{module} computes in torch.float32 or torch.float64; its parameters "
                        f"are {dtype} (use .float() or .double())")


def check_tensor(module: str, tensor: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    """A CPU tensor of the parameters' dtype."""
    if tensor.device.type != "cpu":
        peer = module.replace("eigengru.torch.", "torch.nn.")
        raise RuntimeError(f"{name}: {module} runs on the CPU; got a tensor on "
                           f"{tensor.device} (move it with .cpu(), or use {peer} there)")
    check_dtype(module, tensor.dtype, name)
    if tensor.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} like the module's parameters, got "
                        f"{tensor.dtype}")


def needs_grad(tensors: list[torch.Tensor | None]) -> bool:
    """Whether autograd is to record a call on these tensors (inputs and parameters)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def transforms_active() -> bool:
    """Whether a torch.func transform or a forward-mode AD level is active: tensors may then be
    wrappers that a NumPy array cannot view, or carry tangents that a view would drop, so a call
    goes through an autograd node, which either computes it or refuses it by name."""
    return functorch_active() or _forward_ad._current_level >= 0


functorch_active = torch._C._are_functorch_transforms_active  # a torch.func transform runs
_forward_ad = torch.autograd.forward_ad  # the module: its level changes as levels open


def has_tangents(tensors: list[torch.Tensor | None]) -> bool:
    """Whether any of these tensors is a forward-mode AD dual tensor."""
    return any(t is not None and _forward_ad.unpack_dual(t).tangent is not None
               for t in tensors)
