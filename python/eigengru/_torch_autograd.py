"""The autograd nodes of ``eigengru.torch.GRU`` (and of ``GRUCell``'s steps under torch.func):
the whole stack as one node whose backward is the C++ backward, in the two forms PyTorch has
for them.

Eager autograd runs ``_StackFunction`` (a forward that takes ``ctx``). torch.func's transforms
(``grad``, ``grad_and_value``, ``vjp``) need a forward without ``ctx`` and a ``setup_context``,
a form whose every call PyTorch binds by signature, at several times the cost of an eager call;
they run ``_TransformedStackFunction``, the same forward and backward in that form, which
``vmap`` over the input and state (not the weights) runs as one call on the mapped dimension
folded into the batch. What the core cannot compute is refused by name: forward-mode
derivatives, vmap of the gradients (``jacrev``, ``hessian``, per-sample gradients) or over
the weights, and derivatives of the gradients.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import numpy as np
import torch

from . import _core
from ._torch_checks import array, functorch_active, layer_tuples, numpy_dtype, transforms_active

_NO_DOUBLE_BACKWARD = (
    "eigengru.torch.GRU and GRUCell do not support double backward (differentiating their "
    "gradients, as after create_graph=True or with nested torch.func.grad): their backward is "
    "one C++ call that is not itself differentiable; use torch.nn.GRU or GRUCell for "
    "higher-order gradients")
NO_FORWARD_MODE = (
    "eigengru.torch.GRU and GRUCell do not support forward-mode AD (torch.func.jvp, jacfwd, "
    "torch.autograd.forward_ad): the core computes reverse-mode gradients only; use "
    "torch.nn.GRU or GRUCell for forward-mode derivatives")
_NO_VMAP = (
    "eigengru.torch.GRU and GRUCell support torch.func.vmap over their input and state only, "
    "not over their gradients (jacrev, hessian, per-sample gradients: vmap of grad) nor their "
    "weights (model ensembles); torch.nn.GRU has no vmap at all. Loop over the mapped "
    "dimension instead")
NO_VECTORIZED_JACOBIAN = (
    "eigengru.torch.GRU and GRUCell: torch.autograd.functional.jacobian and hessian with "
    "vectorize=True map the backward over its output gradients (vmap), which the core cannot; "
    "use vectorize=False")

# whether a tensor is one of the output gradients that jacobian(vectorize=True) maps
is_legacy_batched = torch._C._functorch.is_legacy_batchedtensor

_CACHES = {torch.float32: _core.TrainingCacheFloat32, torch.float64: _core.TrainingCacheFloat64}


class CacheLease:
    """A training cache lent to one forward. The forward's autograd node keeps the lease; when
    the lease is freed (with the graph, or at once when no graph was recorded), the cache goes
    back to the pool, since no backward can need what it keeps any more."""

    __slots__ = ("__weakref__", "cache")

    def __init__(self, cache: Any, pool: list) -> None:
        self.cache = cache
        weakref.finalize(self, pool.append, cache)


def free_cache(state: dict, dtype: torch.dtype) -> CacheLease:
    """A training cache that no autograd graph holds any more, lent to a module's forward
    (``state`` is its ``__dict__``), so that its memory (gate records, packed buffers) is reused
    instead of freshly faulted in on every forward. ``state["_cache_pool"]`` holds the caches
    not lent; a module's ``__getstate__`` leaves it out, since it holds C++ objects."""
    pool = state.setdefault("_cache_pool", [])
    for k, cache in enumerate(pool):
        if isinstance(cache, _CACHES[dtype]):
            del pool[k]
            return CacheLease(cache, pool)
    return CacheLease(_CACHES[dtype](), pool)


@functools.lru_cache(maxsize=64)
def stack_spec(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
               reset_after: bool, dropout: float) -> Any:
    """The core's StackSpec of these attributes (one per combination, made once)."""
    return _core.StackSpec(input_size, hidden_size, num_layers, bidirectional, reset_after,
                           dropout)


def run_training_forward(spec: Any, layout: Any, dropout_seed: int, bias: bool, lease: Any,
                         x: torch.Tensor, hx: torch.Tensor | None,
                         weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The stack's forward through its autograd node, keeping the cache of lease (a
    ``CacheLease``) for the backward; ``layout`` is a PackedSequence's ``_PackedLayout``."""
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
    the layout, and the inputs, of which the backward reads only dtypes and shapes, and on
    which its gradients depend. Not save_for_backward: the cache holds the values the backward
    reads, so an in-place edit of an input after the forward changes no gradient."""
    _, layout, _, bias, lease, x, hx, *weights = inputs
    ctx.set_materialize_grads(False)
    ctx.lease, ctx.layout, ctx.bias, ctx.inputs = lease, layout, bias, (x, hx, *weights)


def _backward(ctx, grad_out, grad_h_n):
    if any(g is not None and is_legacy_batched(g) for g in (grad_out, grad_h_n)):
        raise RuntimeError(NO_VECTORIZED_JACOBIAN)
    if torch.is_grad_enabled() or functorch_active():
        # create_graph=True, torch.func.grad (which always asks for it), or a vmap over the
        # backward (jacobian(vectorize=True)): the gradients come out of a node of their own,
        # which refuses to be differentiated or mapped
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
    raise RuntimeError(NO_FORWARD_MODE)


def _refuse_vmap(info, in_dims, *args):
    raise RuntimeError(_NO_VMAP)


def _folded_vmap(info, in_dims, spec, layout, dropout_seed, bias, lease, x, hx, *weights):
    """vmap of the stack over x and hx: the mapped dimension folded into the batch, one call
    for all of it (rows of a batch are independent). x (T, B, I) and hx (L, B, H) become
    (T, V B, I) and (L, V B, H); the outputs, mapped at dimension 1, are unfolded."""
    if layout is not None or any(d is not None for d in in_dims[7:]):
        raise RuntimeError(_NO_VMAP)
    size = info.batch_size

    def fold(tensor, dim):
        mapped = (tensor.unsqueeze(1).expand(-1, size, *tensor.shape[1:]) if dim is None
                  else tensor.movedim(dim, 1))
        return mapped.reshape(mapped.shape[0], -1, mapped.shape[-1]).contiguous()

    def unfold(tensor):
        return tensor.reshape(tensor.shape[0], size, -1, tensor.shape[-1])

    out, h_n = _TransformedStackFunction.apply(
        spec, layout, dropout_seed, bias, lease, fold(x, in_dims[5]),
        None if hx is None else fold(hx, in_dims[6]), *weights)
    return (unfold(out), unfold(h_n)), (1, 1)


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
    vmap = staticmethod(_folded_vmap)


class _Underivable(torch.autograd.Function):
    """Gradients that a backward recording a graph (create_graph=True) made outside autograd,
    joined to the graph through the tensors they were made from: differentiating them raises
    instead of treating them as constants."""

    @staticmethod
    def forward(ctx, count, *tensors):  # the first `count` are the gradients
        return tuple(t.clone() for t in tensors[:count])

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_NO_DOUBLE_BACKWARD)


def underivable(gradients: list, sources: list) -> list:
    """``gradients`` (None where there is none) as outputs of an _Underivable node on
    ``sources``, for a backward that records a graph."""
    given = [g for g in gradients if g is not None]
    if not given:
        return gradients
    made = iter(_Underivable.apply(len(given), *given, *sources))
    return [None if g is None else next(made) for g in gradients]


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
