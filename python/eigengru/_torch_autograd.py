"""The autograd nodes of ``eigengru.torch.GRU``: the whole stack as one node whose backward is
the C++ backward, in the two forms PyTorch has for them.

Eager autograd runs ``_StackFunction`` (a forward that takes ``ctx``). torch.func's transforms
(``grad``, ``grad_and_value``, ``vjp``) need a forward without ``ctx`` and a ``setup_context``,
a form for which PyTorch binds every call's arguments by signature, which costs tens of
microseconds a call; they run ``_TransformedStackFunction``, the same forward and backward in
that form. What the core cannot compute is refused by name: forward-mode derivatives, vmap (as
torch.nn.GRU refuses it), and derivatives of the gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import _core
from ._torch_checks import array, layer_tuples, numpy_dtype, transforms_active

_NO_DOUBLE_BACKWARD = (
    "eigengru.torch.GRU does not support double backward (differentiating its gradients, as "
    "after create_graph=True or with nested torch.func.grad): its backward is one C++ call "
    "that is not itself differentiable; use torch.nn.GRU for higher-order gradients")
_NO_FORWARD_MODE = (
    "eigengru.torch.GRU does not support forward-mode AD (torch.func.jvp, jacfwd, "
    "torch.autograd.forward_ad): the core computes reverse-mode gradients only; use "
    "torch.nn.GRU for forward-mode derivatives")
_NO_VMAP = (
    "eigengru.torch.GRU does not support torch.func.vmap or the transforms built on it "
    "(jacrev, hessian, per-sample gradients); neither does torch.nn.GRU. Put the mapped "
    "dimension into the batch instead, or loop over it")


def run_training_forward(spec: Any, layout: Any, dropout_seed: int, bias: bool, lease: Any,
                         x: torch.Tensor, hx: torch.Tensor | None,
                         weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The stack's forward through its autograd node, keeping the cache of lease (a
    ``_CacheLease``) for the backward; ``layout`` is a PackedSequence's ``_PackedLayout``."""
    node = _TransformedStackFunction if transforms_active() else _StackFunction
    return node.apply(spec, layout, dropout_seed, bias, lease, x, hx, *weights)


def _forward(spec, layout, dropout_seed, bias, lease, x, hx, *weights):
    x_array = array(x) if layout is None else layout.pad(array(x))
    out, h_n = _core.forward_training(spec, layer_tuples(weights, bias), x_array, array(hx),
                                      None if layout is None else layout.lengths,
                                      dropout_seed, lease.cache)
    out = out if layout is None else layout.pack(out)
    return torch.from_numpy(out), torch.from_numpy(h_n)


def _keep(ctx, inputs) -> None:
    """What the backward needs: the lease (the cache is this graph's until the graph is freed),
    the layout, and the inputs, which the backward reads nothing from but which the gradients
    depend on. Not save_for_backward: the cache holds what the backward reads, so an in-place
    edit of an input after the forward changes no gradient."""
    _, layout, _, bias, lease, x, hx, *weights = inputs
    ctx.set_materialize_grads(False)
    ctx.lease, ctx.layout, ctx.bias, ctx.inputs = lease, layout, bias, (x, hx, *weights)


def _backward(ctx, grad_out, grad_h_n):
    if torch.is_grad_enabled():
        # create_graph=True, or torch.func.grad (which always asks for it): the gradients come
        # out of a node of their own, which refuses to be differentiated
        gradients = _StackGradients.apply(ctx.lease, ctx.layout, ctx.bias, grad_out, grad_h_n,
                                          *ctx.inputs)
    else:
        gradients = _gradients(ctx.lease, ctx.layout, ctx.bias, grad_out, grad_h_n, *ctx.inputs)
    return (None,) * 5 + tuple(gradients)


def _gradients(lease, layout, bias, grad_out, grad_h_n, x, hx, *weights):
    """The C++ backward through the forward that filled lease's cache: the gradients of x, of
    hx (None when the forward had none) and of every weight."""
    dtype = numpy_dtype(x.dtype)
    grads = [np.zeros(tuple(w.shape), dtype=dtype) for w in weights]
    grad_out = array(grad_out)
    if grad_out is not None and layout is not None:
        grad_out = layout.pad(grad_out)
    # The cache is kept (backward works on a copy of its gate records), so that the graph can
    # be walked again as with retain_graph=True; it is freed with the graph.
    dx, dh0 = _core.backward(lease.cache, grad_out, array(grad_h_n), layer_tuples(grads, bias),
                             keep_cache=True)
    if layout is not None:
        dx = layout.pack(dx)
    return (torch.from_numpy(dx), None if hx is None else torch.from_numpy(dh0),
            *(torch.from_numpy(g) for g in grads))


def _refuse_forward_mode(ctx, *tangents):
    raise RuntimeError(_NO_FORWARD_MODE)


def _refuse_vmap(info, in_dims, *args):
    raise RuntimeError(_NO_VMAP)


class _StackFunction(torch.autograd.Function):
    """The whole stack as one autograd node: forward keeps eigengru's training cache, backward
    runs the C++ backward once for every input, state and parameter gradient.

    With ``layout`` (a ``_PackedLayout``), x and the output are a PackedSequence's data, laid
    into and out of the padded (T, B, .) arrays the core works on inside this node, so that a
    packed batch costs what a padded one does."""

    @staticmethod
    def forward(ctx, *inputs):
        _keep(ctx, inputs)
        return _forward(*inputs)

    backward = staticmethod(_backward)
    jvp = staticmethod(_refuse_forward_mode)


class _TransformedStackFunction(torch.autograd.Function):
    """_StackFunction in the form torch.func's transforms run."""

    forward = staticmethod(_forward)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _keep(ctx, inputs)

    backward = staticmethod(_backward)
    jvp = staticmethod(_refuse_forward_mode)
    vmap = staticmethod(_refuse_vmap)


class _StackGradients(torch.autograd.Function):
    """The stack's backward as a node of its own, for a backward that records a graph: its
    gradients are right, and differentiating them raises instead of treating them as
    constants."""

    forward = staticmethod(_gradients)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_NO_DOUBLE_BACKWARD)

    vmap = staticmethod(_refuse_vmap)
