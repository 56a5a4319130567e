"""``eigengru.torch.GRUCell``: a drop-in for ``torch.nn.GRUCell`` on the CPU, computed by
eigengru's C++ cell, whose weights are packed once and again only when they change."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _core
from ._checks import CELL_STATE, check_state, input_is_unbatched
from ._torch_autograd import (
    NO_FORWARD_MODE,
    NO_VECTORIZED_JACOBIAN,
    free_cache,
    is_legacy_batched,
    run_training_forward,
    stack_spec,
    underivable,
)
from ._torch_checks import (
    array as _array,
    check_parameter_dtype,
    check_tensor,
    constructor_arguments,
    functorch_active,
    has_tangents,
    layer_tuples,
    needs_grad,
    numpy_dtype,
    transforms_active,
)

_CELLS = {torch.float32: _core.GRUCellFloat32, torch.float64: _core.GRUCellFloat64}
_STACK_STEPS = {torch.float32: _core.StackStepFloat32, torch.float64: _core.StackStepFloat64}
_NAME = "eigengru.torch.GRUCell"


class _Packing:
    """Packed C++ cells (one per layer-direction), the parameters they were packed from (object,
    version, storage), whether a backward has run through them since, and the weight-gradient
    node of a cell's training steps."""

    __slots__ = ("cores", "kept", "reset_after", "stale", "steps", "token")

    def __init__(self, cores: list[Any], kept: list[tuple[Any, int, int]],
                 reset_after: bool) -> None:
        self.cores, self.kept, self.stale, self.reset_after = cores, kept, False, reset_after
        self.token: torch.Tensor | None = None  # _WeightGradients' output, made at first need
        self.steps: dict[int, list] = {}  # backward call -> its steps' (record, x, h)

    @property
    def core(self) -> Any:
        return self.cores[0]

    def weights(self) -> list[torch.Tensor]:
        """The parameters this packing was made from."""
        return [w for w, _, _ in self.kept]

    def weight_token(self, weights: list[torch.Tensor]) -> torch.Tensor:
        """The output of this packing's _WeightGradients node, which every training step takes
        as an input: autograd then runs that node once, after all of a loop's steps."""
        if self.token is None:
            self.token = _WeightGradients.apply(self, *weights)
        return self.token


def packing(previous: _Packing | None, weights: list[torch.Tensor], reset_after: bool,
            per_cell: int = 0, stack: Any = None) -> _Packing:
    """C++ cells packed from weights (w_ih, w_hh[, b_ih, b_hh] per cell, ``per_cell`` of them,
    all by default) as they are now: ``previous`` if none of them has changed since it was
    packed (same object, storage and version counter) and no backward has run through it (an
    optimiser then updates the weights, perhaps through ``.data``, which no version counter
    records). Given ``stack`` (a function returning the core's StackSpec, called only to pack),
    one C++ StackStep of all the cells instead: the one-step calls of ``eigengru.torch.GRU``."""
    if previous is not None and not previous.stale and len(previous.kept) == len(weights) and all(
            w is k and w._version == v and w.data_ptr() == p
            for w, (k, v, p) in zip(weights, previous.kept)):
        return previous
    groups = layer_tuples(weights, (per_cell or len(weights)) == 4)
    if stack is not None:
        cores = [_STACK_STEPS[weights[0].dtype](stack(), groups)]
    else:
        cores = [_CELLS[weights[0].dtype](*group, reset_after) for group in groups]
    return _Packing(cores, [(w, w._version, w.data_ptr()) for w in weights], reset_after)


class _WeightGradients(torch.autograd.Function):
    """The parameter gradients of a loop of steps, as one product each over all its steps.

    Each step's backward leaves its gate gradients in its record (cell.hpp: [da_r, da_z, da_n,
    m'], m' = dL/d(W_hn h + b_hn) with reset_after, else m = r * h) and hands it here with the
    step's x and h (and, under create_graph=True, the x, h and output gradient its gradients
    come from);
    autograd runs this node after every step that takes its output. Then
      dW_ih = Σ [da_r, da_z, da_n]ᵀ x,  db_ih = Σ [da_r, da_z, da_n],
      dW_hh = Σ [da_r, da_z, m']ᵀ h,  db_hh = Σ [da_r, da_z, m']          (reset_after)
      dW_hh = [Σ [da_r, da_z]ᵀ h ; Σ da_nᵀ m],  db_hh = db_ih              (reset before)
    instead of a whole-size product per step. Keeps no tensors, so that several graphs built
    on it (before one backward) are each walked through it."""

    @staticmethod
    def forward(ctx, packing, *weights):
        ctx.packing = packing
        ctx.shapes = [w.shape for w in weights]
        return weights[0].new_empty(0)

    @staticmethod
    def backward(ctx, _):
        steps = ctx.packing.steps.pop(torch._C._current_graph_task_id(), [])
        if not steps:
            return (None,) * (1 + len(ctx.shapes))
        grads = _weight_gradients(ctx.packing.reset_after, len(ctx.shapes), ctx.shapes[1][1],
                                  steps)
        if torch.is_grad_enabled():  # create_graph=True: joined to the graph on their sources
            grads = underivable(grads, ctx.packing.weights() +
                                [t for step in steps for t in step[3]])
        return (None, *grads)


def _weight_gradients(reset_after: bool, count: int, H: int, steps: list) -> list[torch.Tensor]:
    """The parameter gradients of the steps (their records, x and h): see _WeightGradients."""
    with torch.no_grad():
        records, xs, hs = (torch.from_numpy(np.concatenate(part))
                           for part in list(zip(*steps))[:3])
        da = records[:, :3 * H]
        if reset_after:
            dgh = torch.cat([records[:, :2 * H], records[:, 3 * H:]], 1)
            w_hh = dgh.T @ hs
        else:
            dgh = da
            w_hh = torch.cat([records[:, :2 * H].T @ hs,
                              records[:, 2 * H:3 * H].T @ records[:, 3 * H:]])
        grads = [da.T @ xs, w_hh]
        if count == 4:
            grads += [da.sum(0), dgh.sum(0)]
        return grads


class _CellStep(torch.autograd.Function):
    """One step as one autograd node: forward keeps the step's gate record, backward runs the
    C++ step backward for the input and state gradients and hands the record to the packing's
    _WeightGradients node (``token``, None when no parameter needs a gradient)."""

    @staticmethod
    def forward(ctx, packing, token, x, h):
        ctx.set_materialize_grads(False)
        core = packing.core
        h_next = torch.empty(x.shape[0], h.shape[1], dtype=x.dtype)
        record = np.empty((x.shape[0], core.record_size), dtype=numpy_dtype(x.dtype))
        core.forward(_array(x), _array(h), h_next.numpy(), record)
        ctx.packing, ctx.record = packing, record
        ctx.token_node = None if token is None else token.grad_fn
        ctx.save_for_backward(x, h)  # autograd's check for later in-place edits
        return h_next

    @staticmethod
    def backward(ctx, grad_h_next):
        if grad_h_next is not None and is_legacy_batched(grad_h_next):
            raise RuntimeError(NO_VECTORIZED_JACOBIAN)
        x, h = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # An optimizer step is likely next: pack afresh then. Graphs built on this packing
        # keep its weight-gradient node through their own edges; dropping the packing's
        # reference ends the cycle packing -> token -> node -> packing without the collector.
        ctx.packing.stale, ctx.packing.token = True, None
        if grad_h_next is None:
            return (None,) * len(needs)
        x_array, h_array = _array(x), _array(h)
        # create_graph=True (autograd enables grad mode here only then): what the step's
        # gradients are made from beside the weights, which the graph of the gradients must reach
        sources = (x, h, grad_h_next) if torch.is_grad_enabled() else ()
        dx = torch.empty(x.shape, dtype=x.dtype) if needs[2] else None
        dh = torch.empty(h.shape, dtype=h.dtype)
        record = ctx.record.copy()  # a copy: the graph may be walked again (retain_graph=True)
        ctx.packing.core.backward(x_array, h_array, record, _array(grad_h_next),
                                  None if dx is None else dx.numpy(), dh.numpy(),
                                  (None, None, None, None), False)
        node = ctx.token_node
        if node is not None and torch._C._will_engine_execute_node(node):
            task = torch._C._current_graph_task_id()
            ctx.packing.steps.setdefault(task, []).append((record, x_array, h_array, sources))
        token_grad = None if node is None else x.new_empty(0)
        grads = [dx, dh if needs[3] else None]
        if sources:
            grads = underivable(grads, [*sources, *ctx.packing.weights()])
        return (None, token_grad, *grads)


def _transformed_step(cell: GRUCell, x: torch.Tensor, h: torch.Tensor,
                      weights: list[torch.Tensor]) -> torch.Tensor:
    """A step under torch.func's transforms, as a one-step sequence through the one-layer
    stack's autograd node, which they run: the loop's weight-gradient node, which gathers a
    graph's steps as autograd runs them, is not one they allow."""
    spec = stack_spec(cell.input_size, cell.hidden_size, 1, False, cell.reset_after, 0.0)
    _, h_n = run_training_forward(spec, None, 0, cell.bias, free_cache(cell.__dict__, x.dtype),
                                  x.unsqueeze(0), h.unsqueeze(0), weights)
    return h_n[0]


@torch.compiler.disable
def _opaque_step(cell: GRUCell, input: Any, hx: torch.Tensor | None) -> torch.Tensor:
    return cell._step(input, hx)


class GRUCell(nn.Module):
    """``torch.nn.GRUCell`` computed by eigengru on the CPU, with ``reset_after`` (True:
    PyTorch's formulation; False: Cho et al. 2014, reset applied before the recurrent product).

    Same constructor, parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``),
    shapes and initialisation; ``forward(input, hx=None)`` on ``(B, I)`` or unbatched ``(I,)``
    input, with autograd through any loop of steps. The weights are packed for the C++ cell at
    the first call and again only when a parameter changes (its version counter, storage or
    object), so that one-step calls pay for the step alone.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, reset_after: bool = True) -> None:
        super().__init__()
        dtype = constructor_arguments(_NAME, device, dtype, {"input_size": input_size,
                                                             "hidden_size": hidden_size})
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bias, self.reset_after = bool(bias), bool(reset_after)
        gates = 3 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(gates, hidden_size, dtype=dtype))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(gates, dtype=dtype))
            self.bias_hh = nn.Parameter(torch.empty(gates, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in (-1/sqrt(H), 1/sqrt(H)) in nn.GRUCell's order: after the same
        torch.manual_seed, nn.GRUCell and this module start with equal weights."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.reset_after is not True:
            text += f", reset_after={self.reset_after}"
        return text

    def __getstate__(self) -> dict[str, Any]:
        """As for eigengru.torch.GRU: everything but the packed C++ cell and the training caches
        of steps under torch.func, made again on use."""
        state = self.__dict__.copy()
        state.pop("_packed", None)
        state.pop("_cache_pool", None)
        return state

    def _weights(self) -> list[torch.Tensor]:
        return ([self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh] if self.bias
                else [self.weight_ih, self.weight_hh])

    def _cell(self, weights: list[torch.Tensor]) -> _Packing:
        packed = packing(self.__dict__.get("_packed"), weights, self.reset_after)
        self.__dict__["_packed"] = packed
        return packed

    def repack(self) -> None:
        """Pack the weights again at the next call. Needed only after editing a parameter
        through ``.data`` outside training, which no version counter records."""
        self.__dict__.pop("_packed", None)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        # Under torch.compile the step is one graph break (an opaque C++ call with its own
        # autograd node); eager calls skip the wrapper that says so, which costs a step's time.
        if torch.compiler.is_compiling():
            return _opaque_step(self, input, hx)
        return self._step(input, hx)

    def _step(self, input: Any, hx: torch.Tensor | None) -> torch.Tensor:
        weights = self._weights()
        try:  # the common inference call goes straight to the core, which checks it
            if not needs_grad([input, hx, *weights]) and not transforms_active():
                core = self._cell(weights).core
                h = (np.zeros((input.shape[0], self.hidden_size), numpy_dtype(weights[0].dtype))
                     if hx is None else hx.numpy())
                h_next = np.empty_like(h)
                core.forward(input.numpy(), h, h_next, None)
                return torch.from_numpy(h_next)
        except (TypeError, ValueError, RuntimeError, IndexError, AttributeError, KeyError):
            pass  # anything else: checked below, with an error in this module's terms
        return self._checked_step(input, hx, weights)

    def _checked_step(self, input: Any, hx: torch.Tensor | None,
                      weights: list[torch.Tensor]) -> torch.Tensor:
        dtype = weights[0].dtype
        check_parameter_dtype(_NAME, dtype)
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
        check_tensor(_NAME, input, "input", dtype)
        if hx is not None:
            check_tensor(_NAME, hx, "hx", dtype)
        unbatched = input_is_unbatched(input.shape, "input", self.input_size, step=True)
        x = input.unsqueeze(0) if unbatched else input
        expected = (x.shape[0], self.hidden_size)
        if hx is None:
            h = torch.zeros(expected, dtype=dtype)
        else:
            check_state(hx, "hx", CELL_STATE, expected, unbatched)
            h = hx.unsqueeze(0) if unbatched else hx
        if transforms_active():
            if functorch_active():
                h_next = _transformed_step(self, x, h, weights)
                return h_next.squeeze(0) if unbatched else h_next
            if has_tangents([x, h, *weights]):
                raise RuntimeError(NO_FORWARD_MODE)
        packing = self._cell(weights)
        if needs_grad([x, h, *weights]):
            token = packing.weight_token(weights) if needs_grad(weights) else None
            h_next = _CellStep.apply(packing, token, x, h)
        else:
            h_next = torch.empty(expected, dtype=dtype)
            packing.core.forward(_array(x), _array(h), h_next.numpy(), None)
        return h_next.squeeze(0) if unbatched else h_next
