"""eigengru.torch.GRUCell against torch.nn.GRUCell (and the NumPy reference for reset_after=False):
one step, loops of steps with autograd through them, and weights packed only when they change."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")

from torch import nn  # noqa: E402

import eigengru.torch as egt  # noqa: E402

from . import reference  # noqa: E402
from .conftest import assert_close  # noqa: E402

STEPS, B, I, H = 20, 3, 5, 7
DTYPES = [torch.float32, torch.float64]


def np_dtype(dtype):
    return np.float32 if dtype == torch.float32 else np.float64


def twins(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    theirs = nn.GRUCell(I, H, dtype=dtype, **kwargs)
    torch.manual_seed(0)
    ours = egt.GRUCell(I, H, dtype=dtype, **kwargs)
    return theirs, ours


def loop(cell, xs, h0, seed=1):
    """Steps through xs carrying the state, then backward of a random projection of every
    step's state: the final state, d/dx, d/dh0 and the parameter gradients."""
    xs = xs.clone().requires_grad_(True)
    h = None if h0 is None else h0.clone().requires_grad_(True)
    g = torch.Generator().manual_seed(seed)
    loss, state = 0, h
    for t in range(len(xs)):
        state = cell(xs[t], state)
        loss = loss + (state * torch.randn(state.shape, generator=g, dtype=state.dtype)).sum()
    loss.backward()
    return (state.detach(), xs.grad, None if h is None else h.grad,
            {n: p.grad.clone() for n, p in cell.named_parameters()})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_step_loop_matches_nn_grucell(dtype, bias, batched):
    theirs, ours = twins(dtype, bias=bias)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), f"same seed, same init: {name}"
    g = torch.Generator().manual_seed(2)
    shape = (STEPS, B, I) if batched else (STEPS, I)
    xs = torch.randn(shape, generator=g, dtype=dtype)
    h0 = torch.randn((*shape[1:-1], H), generator=g, dtype=dtype)
    for start in (h0, None):
        expected, actual = loop(theirs, xs, start), loop(ours, xs, start)
        for what, a, e in zip(("h", "dx", "dh0"), actual[:3], expected[:3]):
            if e is not None:
                assert a.shape == e.shape and a.dtype == dtype, what
                assert_close(a.numpy(), e.numpy(), np_dtype(dtype), what)
        for name, e in expected[3].items():
            assert_close(actual[3][name].numpy(), e.numpy(), np_dtype(dtype), name)
        theirs.zero_grad()
        ours.zero_grad()


@pytest.mark.parametrize("dtype", DTYPES)
def test_reset_before_loop_matches_the_numpy_reference(dtype):
    torch.manual_seed(0)
    ours = egt.GRUCell(I, H, dtype=dtype, reset_after=False)
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(STEPS, B, I, generator=g, dtype=dtype)
    h0 = torch.randn(B, H, generator=g, dtype=dtype)
    final, dx, dh0, grads = loop(ours, xs, h0, seed=4)
    # The same loss for the reference: sum_t <state_t, w_t> with the same random w_t.
    g = torch.Generator().manual_seed(4)
    w_out = np.stack([torch.randn(B, H, generator=g, dtype=dtype).numpy() for _ in range(STEPS)])
    params = {f"{name}_l0": p.detach().numpy() for name, p in ours.named_parameters()}
    weights = reference.weights_of(params, H)
    _out, h_n, saved = reference.forward(weights, xs.numpy().astype(np.float64),
                                        h0.numpy().astype(np.float64), False)
    rdx, rdh0, rg = reference.backward(weights, saved, w_out.astype(np.float64),
                                       np.zeros((B, H)), False)
    dtype_np = np_dtype(dtype)
    assert_close(final.numpy(), h_n, dtype_np, "h")
    assert_close(dx.numpy(), rdx, dtype_np, "dx")
    assert_close(dh0.numpy(), rdh0, dtype_np, "dh0")
    for short, name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                        ("b_hh", "bias_hh")):
        assert_close(grads[name].numpy(), rg[short], dtype_np, name)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck_through_two_steps(reset_after):
    torch.manual_seed(5)
    cell = egt.GRUCell(3, 4, dtype=torch.float64, reset_after=reset_after)
    names = [name for name, _ in cell.named_parameters()]
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    weights = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]

    def two_steps(x, h, *weights):  # the cell as a function of its parameters too
        # gradcheck perturbs the weights through .data, which no version counter records:
        # copies are new parameter objects, so each call packs what it is given
        params = {name: w.clone() for name, w in zip(names, weights)}
        state = torch.func.functional_call(cell, params, (x, h))
        return torch.func.functional_call(cell, params, (x, state))

    assert torch.autograd.gradcheck(two_steps, (x, h, *weights), eps=1e-6, atol=1e-7)


def test_weights_are_packed_once_and_again_only_when_they_change():
    theirs, ours = twins(torch.float32)
    x, h = torch.randn(B, I), torch.randn(B, H)
    ours(x, h)
    packed = ours._packed
    for _ in range(3):
        ours(x, h)
    assert ours._packed is packed  # unchanged parameters: the same packed cell
    changes = [
        lambda m: m.weight_hh.mul_(1.5),  # an in-place edit under no_grad
        lambda m: m.load_state_dict({k: v * 0.5 for k, v in m.state_dict().items()}),
        lambda m: setattr(m, "bias_ih", nn.Parameter(torch.randn_like(m.bias_ih))),
        lambda m: nn.init.orthogonal_(m.weight_ih),
    ]
    for change in changes:
        torch.manual_seed(6)
        with torch.no_grad():
            change(theirs)
        torch.manual_seed(6)
        with torch.no_grad():
            change(ours)
        with torch.no_grad():
            assert_close(ours(x, h).numpy(), theirs(x, h).numpy(), np.float32, "after a change")
        assert ours._packed is not packed
        packed = ours._packed
    for cell in (theirs, ours):  # an optimizer step, then the next call
        cell(x, h).square().sum().backward()
        torch.optim.SGD(cell.parameters(), lr=0.1).step()
    assert_close(ours(x, h).detach().numpy(), theirs(x, h).detach().numpy(), np.float32, "sgd")
    for cell in (theirs, ours):  # an old-style update through .data, after a backward
        cell(x, h).square().sum().backward()
        for p in cell.parameters():
            p.data.add_(p.grad, alpha=-0.1)
    assert_close(ours(x, h).detach().numpy(), theirs(x, h).detach().numpy(), np.float32, ".data")
    with torch.no_grad():  # through .data without a backward: repack() says so
        for cell in (theirs, ours):
            cell.weight_hh.data.mul_(0.5)
        ours.repack()
        assert_close(ours(x, h).numpy(), theirs(x, h).numpy(), np.float32, "repack")
    ours.load_state_dict(theirs.state_dict())  # float32 training left them ulps apart
    theirs.double()
    ours.double()
    assert_close(ours(x.double(), h.double()).detach().numpy(),
                 theirs(x.double(), h.double()).detach().numpy(), np.float64, "double")


def test_state_dict_repr_and_serialization():
    theirs, ours = twins(torch.float32, bias=False)
    assert repr(ours) == repr(theirs) == f"GRUCell({I}, {H}, bias=False)"
    assert repr(egt.GRUCell(I, H, reset_after=False)) == f"GRUCell({I}, {H}, reset_after=False)"
    other = nn.GRUCell(I, H, bias=False)
    other.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, I)
    ours(x)  # packs
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    with torch.serialization.safe_globals([egt.GRUCell]):
        loaded = torch.load(buffer, weights_only=True)
    for copied in (loaded, copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert "_packed" not in copied.__dict__
        with torch.no_grad():
            assert torch.equal(copied(x), ours(x))
        with torch.no_grad():
            copied.weight_hh.zero_()
        assert not torch.equal(ours.weight_hh, copied.weight_hh)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_create_graph_gives_gradients_and_refuses_to_differentiate_them(bias, reset_after):
    """A loop of steps under torch.autograd.grad(create_graph=True), as code that builds a graph
    of its gradients runs it: nn.GRUCell's gradients (the NumPy reference's for the reset
    before the product), which require grad, and differentiating them raises by name."""
    torch.manual_seed(0)
    ours = egt.GRUCell(I, H, bias=bias, dtype=torch.float64, reset_after=reset_after)
    xs = torch.randn(4, B, I, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)

    def gradients(cell, create_graph):
        x, h = xs.clone().requires_grad_(True), h0.clone().requires_grad_(True)
        state = h
        for t in range(len(xs)):
            state = cell(x[t], state)
        inputs = [x, h, *cell.parameters()]
        return torch.autograd.grad((state ** 2).sum(), inputs, create_graph=create_graph), inputs

    got, inputs = gradients(ours, True)
    if reset_after:
        theirs = nn.GRUCell(I, H, bias=bias, dtype=torch.float64)
        theirs.load_state_dict(ours.state_dict())
        want = [w.numpy() for w in gradients(theirs, False)[0]]
    else:
        params = {f"{name}_l0": p.detach().numpy() for name, p in ours.named_parameters()}
        weights = reference.weights_of(params, H)
        _, h_n, saved = reference.forward(weights, xs.numpy(), h0.numpy(), False)
        dx, dh0, rg = reference.backward(weights, saved, np.zeros((len(xs), B, H)), 2 * h_n,
                                         False)
        want = [dx, dh0, rg["w_ih"], rg["w_hh"]] + ([rg["b_ih"], rg["b_hh"]] if bias else [])
    assert len(got) == len(want) == 2 + len(list(ours.parameters()))
    for g, w in zip(got, want):
        assert g.requires_grad  # joined to the graph, not silently constants
        np.testing.assert_allclose(g.detach().numpy(), w, rtol=1e-10, atol=1e-12)
    for g in got:  # every gradient depends on every input: none may come out as a constant
        for wrt in inputs:
            with pytest.raises(RuntimeError, match="do not support double backward"):
                torch.autograd.grad((g ** 2).sum(), wrt, retain_graph=True)


def test_retain_graph_and_refusals():
    _, ours = twins()
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    out = ours(x, ours(x))
    out.sum().backward(retain_graph=True)
    first = x.grad.clone()
    out.sum().backward()
    assert torch.allclose(x.grad, 2 * first)
    with pytest.raises(ValueError, match=r"input: expected shape \(batch, input_size\) or "
                                         r"\(input_size,\) with input_size = 5, got \(3, 6\)"):
        ours(torch.randn(B, I + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"hx: expected shape \(batch, hidden_size\) = \(3, 7\)"):
        ours(torch.randn(B, I, dtype=torch.float64), torch.randn(B, H + 1, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"expected torch\.float64 like the module's parameters"):
        ours(torch.randn(B, I))
    with pytest.raises(TypeError, match=r"parameters are torch\.float16"):
        ours.half()(torch.randn(B, I).half())
    with pytest.raises(ValueError, match="runs on the CPU"):
        egt.GRUCell(I, H, device="cuda")


def test_torch_compile_works_around_the_step():
    _, ours = twins()
    compiled = torch.compile(ours, backend="eager")
    x = torch.randn(B, I, dtype=torch.float64)
    assert torch.equal(compiled(x), ours(x))


def graph_nodes(tensor):
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return [type(node).__name__ for node in seen]


def test_a_loop_has_one_weight_gradient_node_and_graphs_keep_their_own_gradients():
    """The parameter gradients of a loop are one product per parameter at the end (not one per
    step); graphs built before a backward, gradient accumulation and gradients of the input
    alone each get exactly their own."""
    theirs, ours = twins()
    g = torch.Generator().manual_seed(8)
    xs = torch.randn(2, STEPS, B, I, generator=g, dtype=torch.float64)

    def run(cell, seq):
        h = None
        for t in range(STEPS):
            h = cell(seq[t], h)
        return h.square().sum()

    loss = run(ours, xs[0])
    names = graph_nodes(loss)
    assert names.count("_WeightGradientsBackward") == 1
    assert names.count("_CellStepBackward") == STEPS
    # The input's gradient alone: the weight-gradient node does not run, and leaves nothing
    # behind for the next backward.
    x = xs[0, 0].clone().requires_grad_(True)
    (dx,) = torch.autograd.grad(run(ours, torch.cat([x[None], xs[0, 1:]])), [x])
    (expected,) = torch.autograd.grad(run(theirs, torch.cat([x[None], xs[0, 1:]])), [x])
    assert_close(dx.numpy(), expected.numpy(), np.float64, "dx alone")
    # Two graphs on one packing, walked by two backward calls: each its own gradients.
    results = {}
    for label, cell in (("theirs", theirs), ("ours", ours)):
        def grads(cell=cell):
            values = {n: p.grad.clone() for n, p in cell.named_parameters()}
            cell.zero_grad()
            return values
        first, second = run(cell, xs[0]), run(cell, xs[1])
        first.backward()
        after_first = grads()
        second.backward()
        after_second = grads()
        (run(cell, xs[0]) + run(cell, xs[1])).backward()  # accumulation: one backward
        results[label] = (after_first, after_second, grads())
    for which, expected in enumerate(results["theirs"]):
        for name, e in expected.items():
            assert_close(results["ours"][which][name].numpy(), e.numpy(), np.float64,
                         f"graph {which}: {name}")
    assert ours._packed.steps == {}


def test_a_finished_loop_leaves_no_cycle_behind():
    """The packed cell and weight-gradient node of a loop go as soon as its graph does, without
    waiting for the cycle collector (each holds a copy of the weights)."""
    import gc
    import weakref

    _, ours = twins()
    tokens = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(3):
            h = None
            for _t in range(4):
                h = ours(torch.randn(B, I, dtype=torch.float64), h)
            tokens.append(weakref.ref(ours._packed.token))
            h.sum().backward()
            del h
        assert all(token() is None for token in tokens)
    finally:
        if enabled:
            gc.enable()
