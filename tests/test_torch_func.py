"""eigengru.torch.GRU under torch.func: functional training (functional_call + grad), vjp and
create_graph=True give torch.nn.GRU's gradients (or the NumPy reference's, for the formulation
nn.GRU lacks), and vmap over the input gives nn.GRU's outputs slice by slice; the same for loops
of eigengru.torch.GRUCell steps; what the core cannot compute (forward-mode derivatives, vmap
of gradients or over weights, derivatives of gradients) is refused by name, by GRU, GRUCell and
QuantizedGRU alike."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.autograd.forward_ad as forward_ad  # noqa: E402
from torch.func import functional_call, grad, grad_and_value, vjp  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import eigengru._torch_autograd as autograd_nodes  # noqa: E402
import eigengru.torch as egt  # noqa: E402

from . import reference  # noqa: E402

T, B, I, H = 7, 3, 4, 5
DOUBLE_BACKWARD = "eigengru.torch.GRU and GRUCell do not support double backward"
VMAP = "eigengru.torch.GRU and GRUCell support torch.func.vmap over their input and state only"
FORWARD_MODE = "eigengru.torch.GRU and GRUCell do not support forward-mode AD"


class Tagger(torch.nn.Module):
    """What a user writes: a recurrent layer and a linear head on its last output."""

    def __init__(self, gru_class, **kwargs):
        super().__init__()
        torch.manual_seed(0)
        self.gru = gru_class(I, H, dtype=torch.float64, **kwargs)
        directions = 2 if kwargs.get("bidirectional") else 1
        self.head = torch.nn.Linear(directions * H, 2, dtype=torch.float64)
        self.batch_first = kwargs.get("batch_first", False)

    def forward(self, x, h0):
        out, h_n = self.gru(x, h0)
        last = out[:, -1] if self.batch_first else out[-1]
        return self.head(last), h_n


@pytest.fixture
def transformed_calls(monkeypatch):
    """Counts the forwards of the torch.func form of the stack's node, and forbids the eager
    form: a test that takes it asserts which path ran."""
    calls = []
    original = autograd_nodes._TransformedStackFunction.forward

    def counted(*args):
        calls.append(1)
        return original(*args)

    def eager(*args):
        raise AssertionError("the eager autograd node ran under a torch.func transform")

    monkeypatch.setattr(autograd_nodes._TransformedStackFunction, "forward", staticmethod(counted))
    monkeypatch.setattr(autograd_nodes._StackFunction, "apply", eager)
    return calls


@pytest.mark.parametrize("kwargs", [
    {}, {"num_layers": 2, "bidirectional": True}, {"batch_first": True, "num_layers": 2}],
    ids=["one-layer", "two-layer-bidirectional", "batch-first"])
def test_functional_training_with_torch_func_grad_matches_nn_gru(kwargs, transformed_calls):
    ours, theirs = Tagger(egt.GRU, **kwargs), Tagger(torch.nn.GRU, **kwargs)
    layers = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
    curves = []
    for model in (ours, theirs):
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        g = torch.Generator().manual_seed(1)

        def loss(p, x, h0, y, model=model):
            logits, h_n = functional_call(model, p, (x, h0))
            return torch.nn.functional.cross_entropy(logits, y) + 0.1 * (h_n ** 2).mean()

        curve = []
        for _ in range(4):  # plain SGD on the parameter dict, as functional training does
            shape = (B, T, I) if kwargs.get("batch_first") else (T, B, I)
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            h0 = torch.randn(layers, B, H, generator=g, dtype=torch.float64)
            y = torch.randint(0, 2, (B,), generator=g)
            grads, value = grad_and_value(loss)(params, x, h0, y)
            params = {k: v - 0.5 * grads[k] for k, v in params.items()}
            curve.append(value.item())
        curves.append((curve, params))
    (ours_curve, ours_params), (their_curve, their_params) = curves
    np.testing.assert_allclose(ours_curve, their_curve, rtol=1e-10)
    for name in their_params:
        np.testing.assert_allclose(ours_params[name].numpy(), their_params[name].numpy(),
                                   rtol=1e-9, atol=1e-11, err_msg=name)
    assert len(transformed_calls) == 4


def test_vjp_of_inputs_and_state_matches_nn_gru(transformed_calls):
    torch.manual_seed(0)
    ours = egt.GRU(I, H, num_layers=2, dtype=torch.float64)
    theirs = torch.nn.GRU(I, H, num_layers=2, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    g = torch.Generator().manual_seed(2)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, B, H, generator=g, dtype=torch.float64)
    cotangents = (torch.randn(T, B, H, generator=g, dtype=torch.float64),
                  torch.randn(2, B, H, generator=g, dtype=torch.float64))
    results = []
    for module in (ours, theirs):
        outputs, pullback = vjp(lambda a, b, m=module: m(a, b), x, h0)
        results.append((outputs, pullback(cotangents)))
    for got, want in zip(torch.utils._pytree.tree_leaves(results[0]),
                         torch.utils._pytree.tree_leaves(results[1])):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    assert len(transformed_calls) == 1


def test_packed_sequences_under_torch_func_grad(transformed_calls):
    # torch.nn.GRU itself cannot take a PackedSequence under torch.func.grad: its eager
    # gradients are the oracle
    torch.manual_seed(0)
    ours = egt.GRU(I, H, bidirectional=True, dtype=torch.float64)
    theirs = torch.nn.GRU(I, H, bidirectional=True, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    weights = torch.randn(T * B, 2 * H, generator=g, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([T, 2, 5]), enforce_sorted=False)

    def loss(p, module=ours):
        out, h_n = functional_call(module, p, (packed,))
        return (out.data * weights[: out.data.shape[0]]).sum() + h_n.sum()

    got = grad(loss)({k: v.detach() for k, v in ours.named_parameters()})
    loss(dict(theirs.named_parameters()), theirs).backward()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(got[name].numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    assert len(transformed_calls) == 1


def test_reset_before_under_torch_func_grad_matches_the_reference(transformed_calls):
    torch.manual_seed(0)
    ours = egt.GRU(I, H, reset_after=False, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    h0 = torch.randn(1, B, H, generator=g, dtype=torch.float64)
    grad_out = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    grad_h_n = torch.randn(1, B, H, generator=g, dtype=torch.float64)

    def loss(p, a, b):
        out, h_n = functional_call(ours, p, (a, b))
        return (out * grad_out).sum() + (h_n * grad_h_n).sum()

    params = {k: v.detach() for k, v in ours.named_parameters()}
    got_params, got_x, got_h0 = grad(loss, argnums=(0, 1, 2))(params, x, h0)
    numpy_params = {k: v.numpy() for k, v in params.items()}
    _, _, dx, dh0, want = reference.stack(numpy_params, 1, False, False, x.numpy(), h0.numpy(),
                                          [T] * B, grad_out.numpy(), grad_h_n.numpy())
    np.testing.assert_allclose(got_x.numpy(), dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_h0.numpy(), dh0, rtol=1e-9, atol=1e-12)
    for name in want:
        np.testing.assert_allclose(got_params[name].numpy(), want[name], rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    assert len(transformed_calls) == 1


def test_vmap_over_input_and_state_runs_as_one_folded_call(transformed_calls):
    # torch.nn.GRU has no vmap: the oracle is nn.GRU called on each mapped slice
    torch.manual_seed(0)
    kwargs = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    ours = egt.GRU(I, H, dtype=torch.float64, **kwargs)
    theirs = torch.nn.GRU(I, H, dtype=torch.float64, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    g = torch.Generator().manual_seed(5)
    V = 3
    xs = torch.randn(B, V, T, I, generator=g, dtype=torch.float64)  # mapped at dimension 1
    h0 = torch.randn(4, B, H, generator=g, dtype=torch.float64)  # not mapped
    out, h_n = torch.func.vmap(ours, in_dims=(1, None))(xs, h0)
    for v in range(V):
        want_out, want_h_n = theirs(xs[:, v], h0)
        np.testing.assert_allclose(out[v].detach().numpy(), want_out.detach().numpy(),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h_n[v].detach().numpy(), want_h_n.detach().numpy(),
                                   rtol=1e-12, atol=1e-14)
    assert len(transformed_calls) == 1  # the whole map in one call

    def mapped_loss(p, module):
        outs = torch.func.vmap(lambda a: functional_call(module, p, (a, h0))[0], in_dims=1)(xs)
        return (outs ** 2).sum()

    got = grad(mapped_loss)({k: v.detach() for k, v in ours.named_parameters()}, ours)
    sum((theirs(xs[:, v], h0)[0] ** 2).sum() for v in range(V)).backward()
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(got[name].numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    assert len(transformed_calls) == 2


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_loops_under_torch_func(reset_after, transformed_calls):
    # a loop of cell steps under grad, and a cell under vmap: with reset_after, nn.GRUCell is
    # the oracle; without, the NumPy reference of the same loop as a sequence
    torch.manual_seed(0)
    ours = egt.GRUCell(I, H, dtype=torch.float64, reset_after=reset_after)
    g = torch.Generator().manual_seed(6)
    xs = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)
    weights = torch.randn(B, H, generator=g, dtype=torch.float64)

    def loss(p, module, a, h):
        for t in range(T):
            h = functional_call(module, p, (a[t], h))
        return (h * weights).sum()

    params = {k: v.detach() for k, v in ours.named_parameters()}
    got_params, got_x, got_h0 = grad(loss, argnums=(0, 2, 3))(params, ours, xs, h0)
    mapped = torch.func.vmap(ours, in_dims=(0, None))(xs, h0)  # every step from h0 at once
    assert len(transformed_calls) == T + 1
    if reset_after:
        theirs = torch.nn.GRUCell(I, H, dtype=torch.float64)
        theirs.load_state_dict(ours.state_dict())
        a, h = xs.clone().requires_grad_(True), h0.clone().requires_grad_(True)
        loss(dict(theirs.named_parameters()), theirs, a, h).backward()
        want_params = {k: v.grad.numpy() for k, v in theirs.named_parameters()}
        want_x, want_h0 = a.grad.numpy(), h.grad.numpy()
        want_mapped = torch.stack([theirs(xs[t], h0) for t in range(T)]).detach().numpy()
    else:
        numpy_params = {f"{k}_l0": v.numpy() for k, v in params.items()}
        grad_out = np.zeros((T, B, H))
        _, _, want_x, dh0, want = reference.stack(
            numpy_params, 1, False, False, xs.numpy(), h0.numpy()[None], [T] * B, grad_out,
            weights.numpy()[None])
        want_params, want_h0 = {k: want[f"{k}_l0"] for k in params}, dh0[0]
        want_mapped = np.stack([reference.stack(
            numpy_params, 1, False, False, xs.numpy()[t : t + 1], h0.numpy()[None], [1] * B,
            np.zeros((1, B, H)), np.zeros((1, B, H)))[1][0] for t in range(T)])
    for name in params:
        np.testing.assert_allclose(got_params[name].numpy(), want_params[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_allclose(got_x.numpy(), want_x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_h0.numpy(), want_h0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mapped.detach().numpy(), want_mapped, rtol=1e-12, atol=1e-14)


def test_create_graph_gives_gradients_and_refuses_to_differentiate_them():
    torch.manual_seed(0)
    ours = egt.GRU(I, H, dtype=torch.float64)
    theirs = torch.nn.GRU(I, H, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64)
    grads = []
    for module in (ours, theirs):
        a = x.clone().requires_grad_(True)
        out, _ = module(a)
        grads.append(torch.autograd.grad((out ** 2).sum(), [a, module.weight_hh_l0],
                                         create_graph=True))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    dx, dw = grads[0]
    assert dx.requires_grad and dw.requires_grad  # not silently constants
    with pytest.raises(RuntimeError, match=re.escape(DOUBLE_BACKWARD)):
        ((dx ** 2).sum() + dw.sum()).backward()
    with pytest.raises(RuntimeError, match=re.escape(DOUBLE_BACKWARD)):
        grad(lambda a: grad(lambda b: ours(b)[0].sum())(a).sum())(x)


# PyTorch's forward-mode AD loads its decompositions through torch.jit.script at first use
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_what_the_core_cannot_compute_is_refused_by_name():
    torch.manual_seed(0)
    gru = egt.GRU(I, H, dtype=torch.float64)
    cell = egt.GRUCell(I, H, dtype=torch.float64)
    quantized = egt.quantize(egt.GRU(I, H), "int8")
    x = torch.randn(T, B, I, dtype=torch.float64)
    step, h = x[0], torch.randn(B, H, dtype=torch.float64)
    params = {k: v.detach() for k, v in gru.named_parameters()}
    refusals = [
        (lambda: torch.func.jacrev(lambda a: gru(a)[0])(x[:2]), VMAP),
        (lambda: torch.func.vmap(grad(lambda p, a: functional_call(gru, p, (a,))[0].sum()),
                                 in_dims=(None, 0))(params, x.unsqueeze(0)), VMAP),
        (lambda: torch.func.vmap(lambda p, a: functional_call(gru, p, (a,)), in_dims=(0, None))(
            torch.func.stack_module_state([gru, gru])[0], x), VMAP),
        (lambda: torch.func.jvp(lambda a: gru(a)[0], (x,), (x,)), FORWARD_MODE),
        (lambda: torch.func.jvp(lambda a: gru(a)[0], (x[:1],), (x[:1],)),  # one step
         FORWARD_MODE),
        (lambda: torch.func.jvp(lambda a: cell(a, h), (step,), (step,)), FORWARD_MODE),
        (lambda: torch.func.jacrev(lambda a: cell(a, h))(step), VMAP),
        (lambda: torch.func.vmap(quantized)(x.float().unsqueeze(0)),
         "eigengru.torch.QuantizedGRU: inference only, on plain tensors"),
    ]
    for call, message in refusals:
        with pytest.raises(RuntimeError, match=re.escape(message)):
            call()
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x, torch.randn_like(x))
        for call, message in [
                (lambda: gru(dual), FORWARD_MODE),
                (lambda: cell(forward_ad.make_dual(step, step), h), FORWARD_MODE),
                (lambda: quantized(forward_ad.make_dual(x.float(), x.float())),
                 "eigengru.torch.QuantizedGRU: inference only, on plain tensors")]:
            with pytest.raises(RuntimeError, match=re.escape(message)):
                call()
            with torch.no_grad(), pytest.raises(RuntimeError, match=re.escape(message)):
                call()
        # under a forward-mode level, plain tensors still run, with the usual numbers
        inside = gru(x)[0], cell(step, h), quantized(x.float())[0]
    outside = gru(x)[0], cell(step, h), quantized(x.float())[0]
    for got, want in zip(inside, outside):
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
