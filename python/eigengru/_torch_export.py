"""How ``eigengru.torch.GRU`` computes while PyTorch traces or exports a model.

The module's own forward hands tensors to C++ through NumPy, which a tracer cannot follow. While
a model is traced, the stack is written instead in operators every exporter knows:

- ``torch.onnx.export`` (the default exporter, ``dynamo=True``): one ONNX ``GRU`` node per layer,
  both formulations (``linear_before_reset`` = ``reset_after``), as ``eigengru.interop.to_onnx``
  writes them;
- ``torch.jit.trace``, ``torch.export`` and the TorchScript ONNX exporter (``dynamo=False``):
  ``torch.nn.GRU``'s own operator, which computes the ``reset_after=True`` formulation only; a
  ``reset_after=False`` module is refused there with an error that names what works.

Dropout has no ONNX or traced form here, so a module that would apply it (training mode,
``dropout > 0``, more than one layer) is refused: export after ``model.eval()``.
"""

from __future__ import annotations

from typing import Any

import torch

_ONNX_GRU_VERSION = 14  # the GRU operator's latest revision (layout attribute, opset 14)


def is_tracing() -> bool:
    """Whether a tracer or exporter, rather than eager PyTorch, is running the forward."""
    # The TorchScript exporter traces; the default one runs torch.export.
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def traced_forward(module: Any, x: torch.Tensor, hx: torch.Tensor | None,
                   weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The stack on time-major ``x`` (T, B, I) and ``hx`` (L*D, B, H) or None, with the
    module's flat ``weights``, in operators the running tracer records; returns ``out``
    (T, B, D*H) and ``h_n`` (L*D, B, H)."""
    if module.training and module.dropout > 0 and module.num_layers > 1:
        raise RuntimeError(
            "eigengru.torch.GRU: a traced or exported model cannot apply dropout between "
            "layers; call model.eval() before exporting or tracing it")
    if torch.onnx.is_in_onnx_export() and not torch.jit.is_tracing():
        return _onnx_gru_nodes(module, x, hx, weights)
    if not module.reset_after:
        raise RuntimeError(
            "eigengru.torch.GRU(reset_after=False) has no TorchScript or torch.export form "
            "(torch.nn.GRU's operator computes reset_after=True only). To write ONNX, use "
            "torch.onnx.export with its default exporter (dynamo=True), which writes ONNX GRU "
            "nodes with linear_before_reset=0, or eigengru.interop.to_onnx")
    if hx is None:
        hx = x.new_zeros(module.num_layers * (2 if module.bidirectional else 1), x.shape[1],
                         module.hidden_size)
    out, h_n = torch._VF.gru(x, hx, weights, module.bias, module.num_layers,
                             0.0, False, module.bidirectional, False)
    return out, h_n


def _zrn(blocks: torch.Tensor, hidden: int) -> torch.Tensor:
    """Gate blocks along dimension 0 from PyTorch's (r, z, n) to ONNX's (z, r, h)."""
    return torch.cat([blocks[hidden:2 * hidden], blocks[:hidden], blocks[2 * hidden:]], 0)


def _onnx_gru_nodes(module: Any, x: torch.Tensor, hx: torch.Tensor | None,
                    flat: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    H, D = module.hidden_size, 2 if module.bidirectional else 1
    steps, batch = x.shape[0], x.shape[1]
    per = 4 if module.bias else 2
    layer_input, states = x, []
    for layer in range(module.num_layers):
        params = [flat[(layer * D + d) * per:(layer * D + d + 1) * per] for d in range(D)]
        W = torch.stack([_zrn(p[0], H) for p in params])
        R = torch.stack([_zrn(p[1], H) for p in params])
        B = (torch.stack([torch.cat([_zrn(p[2], H), _zrn(p[3], H)]) for p in params])
             if module.bias else None)
        h0 = None if hx is None else hx[layer * D:(layer + 1) * D]
        y, y_h = torch.onnx.ops.symbolic_multi_out(
            "GRU", [layer_input, W, R, B, None, h0],
            {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward",
             "linear_before_reset": int(module.reset_after)},
            dtypes=[x.dtype, x.dtype], shapes=[[steps, D, batch, H], [D, batch, H]],
            version=_ONNX_GRU_VERSION)
        layer_input = y.permute(0, 2, 1, 3).reshape(steps, batch, D * H)
        states.append(y_h)
    return layer_input, torch.cat(states, 0)
