"""eigengru.torch.GRU against torch.nn.GRU: a drop-in on every input kind, with autograd."""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")

from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import eigengru.torch as egt  # noqa: E402
from eigengru._torch_autograd import _StackFunction, free_cache  # noqa: E402

from .conftest import assert_close, feature_grid, feature_id  # noqa: E402

T, B, I, H = 6, 4, 3, 5
CASES = feature_grid([torch.float32, torch.float64])


def case_id(case):
    return feature_id(case, ("padded", "packed"), ("nohx", "hx"))


def twins(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    reference = torch.nn.GRU(I, H, dtype=dtype, **kwargs)
    torch.manual_seed(0)
    ours = egt.GRU(I, H, dtype=dtype, **kwargs)
    return reference, ours


def run(module, x, hx, lengths, batch_first, grad_seed):
    """Forward, then backward of a random projection of every output; returns values and grads."""
    x = x.clone().requires_grad_(True)
    h = None if hx is None else hx.clone().requires_grad_(True)
    inp = x if lengths is None else pack_padded_sequence(x, lengths, batch_first=batch_first,
                                                         enforce_sorted=False)
    out, h_n = module(inp, h)
    data = out.data if lengths is not None else out
    g = torch.Generator().manual_seed(grad_seed)
    loss = (data * torch.randn(data.shape, generator=g, dtype=data.dtype)).sum() + \
        (h_n * torch.randn(h_n.shape, generator=g, dtype=h_n.dtype)).sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    return out, h_n, x.grad, None if h is None else h.grad, grads


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_nn_gru(case):
    layers, bidirectional, batch_first, packed, with_hx, dtype = case
    reference, ours = twins(dtype, num_layers=layers, bidirectional=bidirectional,
                            batch_first=batch_first)
    for (name, a), (_, b) in zip(reference.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), f"same seed, same init: {name}"
    g = torch.Generator().manual_seed(zlib.crc32(case_id(case).encode()))
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g, dtype=dtype)
    directions = 2 if bidirectional else 1
    hx = torch.randn(layers * directions, B, H, generator=g, dtype=dtype) if with_hx else None
    lengths = torch.tensor([T, 2, 5, 1]) if packed else None
    expected = run(reference, x, hx, lengths, batch_first, 1)
    actual = run(ours, x, hx, lengths, batch_first, 1)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    out_e, out_a = expected[0], actual[0]
    if packed:
        assert type(out_a) is type(out_e)
        assert torch.equal(out_a.batch_sizes, out_e.batch_sizes)
        assert torch.equal(out_a.sorted_indices, out_e.sorted_indices)
        out_e, out_a = out_e.data, out_a.data
    assert out_a.shape == out_e.shape and out_a.dtype == dtype
    for what, a, e in [("out", out_a, out_e), ("h_n", actual[1], expected[1]),
                       ("dx", actual[2], expected[2])]:
        assert_close(a.detach().numpy(), e.detach().numpy(), np_dtype, what)
    if with_hx:
        assert_close(actual[3].numpy(), expected[3].numpy(), np_dtype, "dhx")
    for name, e in expected[4].items():
        assert_close(actual[4][name].numpy(), e.numpy(), np_dtype, name)


def test_unbatched_input():
    reference, ours = twins(num_layers=2, bidirectional=True)
    x = torch.randn(T, I, dtype=torch.float64)
    h = torch.randn(4, H, dtype=torch.float64)
    (oe, he), (oa, ha) = reference(x, h), ours(x, h)
    assert oa.shape == oe.shape and ha.shape == he.shape
    assert_close(oa.detach().numpy(), oe.detach().numpy(), np.float64, "out")


def test_gradcheck_every_input_and_parameter():
    torch.manual_seed(1)
    module = egt.GRU(2, 3, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    params = list(module.parameters())

    def f(x, h, *weights):
        for p, w in zip(params, weights):
            p.data = w.detach()  # the function of the weights passed in
        with torch.enable_grad():
            out, h_n = _StackFunction.apply(module._spec(True), None, 0, True,
                                            free_cache(module.__dict__, torch.float64), x, h,
                                            *weights)
        return out, h_n

    weights = [p.detach().clone().requires_grad_(True) for p in params]
    assert torch.autograd.gradcheck(f, (x, h, *weights), eps=1e-6, atol=1e-6)


def test_double_backward_is_refused():
    module = egt.GRU(I, H, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    out, _ = module(x)
    dx, = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="do not support double backward"):
        dx.sum().backward()


def test_autograd_utilities_give_nn_grus_gradients():
    """Activation checkpointing (both kinds), anomaly mode, saved-tensor hooks and
    torch.autograd.functional.jacobian, as training scripts use them; hessian and the vectorized
    jacobian, which map or differentiate the backward, are refused by name."""
    from torch.utils.checkpoint import checkpoint

    reference, ours = twins(num_layers=2)
    x = torch.randn(T, B, I, dtype=torch.float64)

    def gradients(module, loss):
        module.zero_grad()
        a = x.clone().requires_grad_(True)
        loss(module, a).backward()
        return [p.grad.clone() for p in module.parameters()] + [a.grad]

    losses = {
        "checkpoint": lambda m, a: checkpoint(lambda b: m(b)[0], a, use_reentrant=False).sum(),
        "reentrant checkpoint": lambda m, a: checkpoint(lambda b: m(b)[0] ** 2, a,
                                                        use_reentrant=True).sum(),
        "saved-tensor hooks": lambda m, a: m(a)[0].square().sum(),
    }
    for name, loss in losses.items():
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
            got, want = gradients(ours, loss), gradients(reference, loss)
        for g, w in zip(got, want):
            assert_close(g.numpy(), w.numpy(), np.float64, name)
    square = losses["saved-tensor hooks"]
    with torch.autograd.set_detect_anomaly(True):
        got, want = gradients(ours, square), gradients(reference, square)
    for g, w in zip(got, want):
        assert_close(g.numpy(), w.numpy(), np.float64, "anomaly mode")
    short = x[:3, :2]
    jacobians = [torch.autograd.functional.jacobian(lambda a, m=m: m(a)[0], short)
                 for m in (ours, reference)]
    assert_close(jacobians[0].numpy(), jacobians[1].numpy(), np.float64, "jacobian")
    cell = egt.GRUCell(I, H, dtype=torch.float64)
    refused = [(lambda: torch.autograd.functional.jacobian(lambda a: ours(a)[0], short,
                                                           vectorize=True), "vectorize=True"),
               (lambda: torch.autograd.functional.jacobian(cell, short[0], vectorize=True),
                "vectorize=True"),
               (lambda: torch.autograd.functional.hessian(lambda a: ours(a)[0].sum(), short),
                "do not support double backward")]
    for call, message in refused:
        with pytest.raises(RuntimeError, match=message):
            call()


def test_computed_weights_match_nn_gru():
    """Weights computed from parameters, as on nn.GRU and nn.GRUCell: torch.nn.utils.parametrize
    (weight norm, spectral norm, an orthogonal recurrent matrix, a parametrization of one's own)
    and torch.nn.utils.prune. The module computes with the weights they give, in training, in
    inference and one step at a time."""
    from torch.nn.utils import parametrize, prune
    from torch.nn.utils.parametrizations import orthogonal, spectral_norm, weight_norm

    class Halved(torch.nn.Module):
        def forward(self, w):
            return 0.5 * w

    parametrizations = {
        "weight_norm": lambda m: weight_norm(m, "weight_hh_l0"),
        "spectral_norm": lambda m: spectral_norm(m, "weight_ih_l0"),
        "orthogonal": lambda m: orthogonal(m, "weight_hh_l0"),
        "own": lambda m: parametrize.register_parametrization(m, "weight_ih_l1", Halved()),
        "prune": lambda m: prune.l1_unstructured(m, "weight_hh_l0", amount=0.5),
    }
    x = torch.randn(T, B, I, dtype=torch.float64)
    for name, parametrized in parametrizations.items():
        reference, ours = twins(num_layers=2)
        for module in (reference, ours):
            torch.manual_seed(1)  # the same random start for spectral_norm's power iteration
            parametrized(module)
            # nn.GRU computes its weights twice a call, where eigengru's module does once; in
            # training mode each computation moves spectral_norm's power iteration on a step
            module.eval()
        reference.load_state_dict(ours.state_dict())
        results = []
        for module in (ours, reference):
            out, h_n = module(x)
            (out.square().sum() + h_n.sum()).backward()
            with torch.no_grad():
                step = module(x[:1], h_n)[0]
            results.append([out, h_n, step] + [p.grad for p in module.parameters()])
        for got, want in zip(*results):
            assert_close(got.detach().numpy(), want.detach().numpy(), np.float64, name)
        twin = ours.to_nn_gru()
        assert_close(twin(x)[0].detach().numpy(), ours(x)[0].detach().numpy(), np.float64,
                     f"{name}: to_nn_gru")
    computed = []

    class Counted(torch.nn.Module):
        def forward(self, w):
            computed.append(1)
            return w

    _, ours = twins(num_layers=2)
    parametrize.register_parametrization(ours, "weight_hh_l1", Counted())
    computed.clear()
    _, h_n = ours(x)  # training path, then a one-step call in inference
    with torch.no_grad():
        ours(x[:1], h_n)
    assert len(computed) == 2  # once a call: a parametrization may cost as much as the call
    cells = []
    for cls in (egt.GRUCell, torch.nn.GRUCell):
        torch.manual_seed(0)
        cell = cls(I, H, dtype=torch.float64)
        weight_norm(cell, "weight_hh")
        prune.l1_unstructured(cell, "weight_ih", amount=0.5)
        h = torch.zeros(B, H, dtype=torch.float64)
        for t in range(T):
            h = cell(x[t], h)
        h.square().sum().backward()
        cells.append([h] + [p.grad for p in cell.parameters()])
    for got, want in zip(*cells):
        assert_close(got.detach().numpy(), want.detach().numpy(), np.float64, "cell")


def test_training_loss_curve_matches_nn_gru():
    reference, ours = twins(num_layers=2, batch_first=True)
    heads = [torch.nn.Linear(H, 1, dtype=torch.float64) for _ in range(2)]
    heads[1].load_state_dict(heads[0].state_dict())
    losses = []
    for gru, head in zip((reference, ours), heads):
        optimizer = torch.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=0.01)
        g = torch.Generator().manual_seed(3)
        curve = []
        for _ in range(15):
            x = torch.randn(B, T, I, generator=g, dtype=torch.float64)
            y = x.sum(dim=(1, 2)).unsqueeze(1)
            out, _ = gru(x)
            loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(gru.parameters(), 1.0)
            optimizer.step()
            curve.append(loss.item())
        losses.append(curve)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-9)
    assert losses[1][-1] < losses[1][0]


def test_graphs_alive_at_once_keep_their_own_caches():
    """Two forwards before their backwards (gradient accumulation) must not share a cache."""
    reference, ours = twins()
    x1, x2 = (torch.randn(T, B, I, dtype=torch.float64) for _ in range(2))
    for module in (reference, ours):
        out1, _ = module(x1)
        out2, _ = module(x2)
        (out1.sum() + 2 * out2.sum()).backward()
    for (name, a), (_, b) in zip(reference.named_parameters(), ours.named_parameters()):
        assert_close(b.grad.numpy(), a.grad.numpy(), np.float64, name)
    assert ours._cache_pool == []  # both caches lent, one to each graph
    del out1, out2  # the graphs go, and their caches come back
    assert len(ours._cache_pool) == 2 and ours._cache_pool[0] is not ours._cache_pool[1]
    ours.zero_grad()
    ours(x1)[0].sum().backward()  # a pooled cache is lent again, and comes back: none made
    assert len(ours._cache_pool) == 2


def test_no_grad_and_inference_mode_save_nothing():
    module = egt.GRU(I, H)
    x = torch.randn(T, B, I)
    with torch.no_grad():
        out, _ = module(x)
    assert out.grad_fn is None
    with torch.inference_mode():
        out2, _ = module(x)
    assert torch.equal(out, out2)
    out3, _ = module(x)  # parameters require grad: a graph is kept
    assert out3.grad_fn is not None


def test_state_dicts_move_both_ways():
    reference = torch.nn.GRU(I, H, num_layers=2, bidirectional=True)
    ours = egt.GRU(I, H, num_layers=2, bidirectional=True)
    ours.load_state_dict(reference.state_dict())
    back = torch.nn.GRU(I, H, num_layers=2, bidirectional=True)
    back.load_state_dict(ours.state_dict())
    for (_, a), (_, b) in zip(reference.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b)


def test_dropout_in_training_mode_only():
    module = egt.GRU(I, H, num_layers=2, dropout=0.5)
    x = torch.randn(T, B, I)
    torch.manual_seed(5)
    a, _ = module(x)
    torch.manual_seed(5)
    b, _ = module(x)
    assert torch.equal(a, b)  # reproducible from torch's seed
    module.eval()
    c, _ = module(x)
    assert not torch.allclose(a, c)
    module.train()
    with torch.no_grad():
        d, _ = module(x)
    assert not torch.allclose(c, d)  # training mode drops out even without gradients


def test_bad_inputs_get_clear_errors():
    module = egt.GRU(I, H)
    with pytest.raises(TypeError,
                       match=r"supports torch\.float32 and torch\.float64, got torch\.float16"):
        module(torch.randn(T, B, I).half())
    with pytest.raises(TypeError, match=r"expected torch\.float32 like the module's parameters"):
        module(torch.randn(T, B, I, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="runs on the CPU; got a tensor on meta"):
        module(torch.randn(T, B, I, device="meta"))
    with pytest.raises(ValueError, match="runs on the CPU"):
        egt.GRU(I, H, device="cuda")
    with pytest.raises(ValueError, match=r"hx: expected shape \(num_layers \* directions, batch, "
                                         r"hidden_size\) = \(1, 4, 5\), got \(1, 3, 5\)"):
        module(torch.randn(T, B, I), torch.randn(1, 3, H))
    with pytest.raises(ValueError, match=r"input: expected shape \(steps, batch, input_size\) or "
                                         r"\(steps, input_size\) with input_size = 3, got "
                                         r"\(6, 4, 4\)"):
        module(torch.randn(T, B, I + 1))


def test_torch_compile_works_around_the_op():
    module = egt.GRU(I, H)
    compiled = torch.compile(module, backend="eager")
    x = torch.randn(T, B, I)
    out, _ = compiled(x)
    assert torch.allclose(out, module(x)[0])
    out.sum().backward()
    assert module.weight_hh_l0.grad is not None


def test_import_eigengru_torch_is_separate():
    code = ("import sys, eigengru; assert 'torch' not in sys.modules; "
            "import eigengru.torch; assert 'torch' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
