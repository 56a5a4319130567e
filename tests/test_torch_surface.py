"""The public surface of torch.nn.GRU on eigengru.torch.GRU: attributes, repr, dtype switches,
parameters that scripts edit in every way they do, hooks, tracing and scripting."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")

from torch import nn  # noqa: E402

import eigengru.torch as egt  # noqa: E402

from .conftest import assert_close  # noqa: E402

T, B, I, H = 5, 3, 4, 6

CONFIGS = [dict(), dict(num_layers=2, bias=False, batch_first=True, dropout=0.5,
                        bidirectional=True)]


def twins(**kwargs):
    torch.manual_seed(0)
    theirs = nn.GRU(I, H, **kwargs)
    torch.manual_seed(0)
    ours = egt.GRU(I, H, **kwargs)
    return theirs, ours


def assert_same_outputs(theirs, ours, dtype=torch.float32):
    x = torch.randn(T, B, I, dtype=dtype)
    with torch.no_grad():
        expected, actual = theirs(x), ours(x)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    for what, a, e in zip(("out", "h_n"), actual, expected):
        assert a.dtype == dtype, what
        assert_close(a.numpy(), e.numpy(), np_dtype, what)


@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "others"])
def test_attributes_and_repr_are_nn_grus(config):
    theirs, ours = twins(**config)
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "proj_size", "mode", "training"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [[p.shape for p in layer] for layer in ours.all_weights] == \
        [[p.shape for p in layer] for layer in theirs.all_weights]
    assert all(a is b for a, b in zip(ours._flat_weights, ours.parameters()))
    assert ours.flatten_parameters() is None  # a no-op on the CPU, as nn.GRU's
    assert repr(egt.GRU(I, H, reset_after=False)) == f"GRU({I}, {H}, reset_after=False)"


def test_dtype_switches():
    theirs, ours = twins(num_layers=2)
    theirs.double()
    ours.double()
    assert_same_outputs(theirs, ours, torch.float64)
    theirs.float()
    ours.float()
    assert_same_outputs(theirs, ours, torch.float32)
    theirs.to(torch.float64)
    ours.to(torch.float64)
    assert_same_outputs(theirs, ours, torch.float64)
    ours.half()
    with pytest.raises(TypeError, match=r"computes in torch.float32 or torch.float64; its "
                                        r"parameters are torch.float16 \(use .float\(\)"):
        ours(torch.randn(T, B, I, dtype=torch.float16))
    ours.to(torch.bfloat16)
    with pytest.raises(TypeError, match=r"parameters are torch\.bfloat16"):
        ours(torch.randn(T, B, I))


def test_train_and_eval_control_dropout_as_in_nn_gru():
    theirs, ours = twins(num_layers=3, dropout=0.5)
    x = torch.randn(T, B, I)
    ours.eval()
    theirs.eval()
    assert_same_outputs(theirs, ours)  # eval: no dropout in either
    ours.train()
    torch.manual_seed(1)
    a = ours(x)[0]
    torch.manual_seed(2)
    b = ours(x)[0]
    assert not torch.equal(a, b)  # training: dropout masks from torch's generator
    ours.dropout = 0.0  # a script may change it after construction, as with nn.GRU
    torch.manual_seed(1)
    c = ours(x)[0]
    torch.manual_seed(2)
    assert torch.equal(c, ours(x)[0])


EDITS = {
    "nn.init": lambda m: [nn.init.orthogonal_(p) for n, p in m.named_parameters()
                          if n.startswith("weight")],
    "apply": lambda m: m.apply(lambda mod: [nn.init.normal_(p, std=0.3)
                                            for p in mod.parameters(recurse=False)]),
    "no_grad-edit": lambda m: [p.mul_(1.7) for p in m.parameters()],
    "load_state_dict": lambda m: m.load_state_dict(
        {k: torch.randn_like(v) * 0.4 for k, v in m.state_dict().items()}, strict=True),
    "assign-parameter": lambda m: setattr(m, "weight_hh_l0",
                                          nn.Parameter(torch.randn_like(m.weight_hh_l0))),
    "optimizer-step": None,
}


@pytest.mark.parametrize("edit", EDITS)
def test_parameter_changes_take_effect_at_the_next_call(edit):
    theirs, ours = twins(num_layers=2)
    x = torch.randn(T, B, I)
    ours(x)  # a first call, so that anything kept from it would go stale
    if edit == "optimizer-step":
        for module in (theirs, ours):
            module(x)[0].square().sum().backward()
            torch.optim.SGD(module.parameters(), lr=0.3).step()
    else:
        torch.manual_seed(9)
        with torch.no_grad():
            EDITS[edit](theirs)
        torch.manual_seed(9)
        with torch.no_grad():
            EDITS[edit](ours)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert_close(b.detach().numpy(), a.detach().numpy(), np.float32, name)
    assert_same_outputs(theirs, ours)


def test_forward_and_full_backward_hooks_run_as_on_nn_gru():
    seen = {}
    for label, module in zip(("theirs", "ours"), twins(num_layers=2)):
        calls = []
        module.register_forward_pre_hook(
            lambda m, args, calls=calls: calls.append(("pre", len(args))))
        module.register_forward_hook(
            lambda m, args, out, calls=calls: calls.append(("forward", tuple(out[0].shape))))
        module.register_full_backward_hook(
            lambda m, grad_in, grad_out, calls=calls: calls.append(
                ("backward", tuple(g.shape for g in grad_in if g is not None),
                 tuple(g.shape for g in grad_out if g is not None))))
        torch.manual_seed(3)
        x = torch.randn(T, B, I, requires_grad=True)
        out, h_n = module(x)
        (out.square().sum() + h_n.sum()).backward()
        seen[label] = (calls, x.grad)
    assert seen["ours"][0] == seen["theirs"][0]
    assert [c[0] for c in seen["ours"][0]] == ["pre", "forward", "backward"]
    assert_close(seen["ours"][1].numpy(), seen["theirs"][1].numpy(), np.float32, "dx")


@pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning")
def test_jit_trace_records_nn_grus_operator():
    theirs, ours = twins(num_layers=2, batch_first=True, bidirectional=True)
    ours.eval()
    x = torch.randn(B, T, I)
    traced = torch.jit.trace(ours, (x,))
    assert "aten::gru" in str(traced.graph)
    y = torch.randn(B + 1, T + 2, I)  # the traced graph is not tied to the example's shape
    with torch.no_grad():
        expected = theirs(y)
    for what, a, e in zip(("out", "h_n"), traced(y), expected):
        assert_close(a.detach().numpy(), e.numpy(), np.float32, what)


def test_torch_export_records_nn_grus_operator():
    theirs, ours = twins(num_layers=2)
    ours.eval()
    x = torch.randn(T, B, I)
    program = torch.export.export(ours, (x,))
    assert "aten.gru" in str(program.graph)
    with torch.no_grad():
        expected = theirs(x)
    for what, a, e in zip(("out", "h_n"), program.module()(x), expected):
        assert_close(a.detach().numpy(), e.numpy(), np.float32, what)


@pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning")
def test_what_cannot_be_traced_or_scripted_says_what_to_do():
    ours = egt.GRU(I, H, reset_after=False).eval()
    with pytest.raises(RuntimeError, match=r"reset_after=False.*torch\.onnx\.export.*dynamo=True"):
        torch.jit.trace(ours, (torch.randn(T, B, I),))
    with pytest.raises(RuntimeError, match=r"torch.jit.script cannot compile.*torch.export.export"):
        torch.jit.script(nn.Sequential(egt.GRU(I, H)))
    with pytest.raises(RuntimeError, match=r"cannot apply dropout.*model.eval\(\)"):
        torch.jit.trace(egt.GRU(I, H, num_layers=2, dropout=0.5), (torch.randn(T, B, I),))
    with pytest.raises(ValueError, match="reset_after=True formulation only"):
        ours.to_nn_gru()


def test_to_nn_gru_is_an_equivalent_module():
    _, ours = twins(num_layers=2, bidirectional=True, bias=False)
    twin = ours.to_nn_gru()
    assert type(twin) is nn.GRU and repr(twin) == repr(ours)
    assert_same_outputs(twin, ours)
    with torch.no_grad():
        twin.weight_hh_l0.mul_(2)  # a copy: the original keeps its weights
    assert not torch.equal(twin.weight_hh_l0, ours.weight_hh_l0)


@pytest.mark.parametrize("config", [dict(num_layers=2, bidirectional=True, batch_first=True),
                                    dict(num_layers=3, bias=False)], ids=["bi-bf", "L3-nobias"])
def test_one_step_calls_take_the_packed_stack_and_see_every_change(config, monkeypatch):
    theirs, ours = twins(**config)
    ours.eval()
    theirs.eval()
    D = 2 if config.get("bidirectional") else 1
    layers = config["num_layers"]
    x = torch.randn((B, 1, I) if config.get("batch_first") else (1, B, I))
    h = torch.randn(layers * D, B, H)
    unbatched = x[0] if config.get("batch_first") else x[:, 0]  # (1, I): one step
    general = ours._forward
    monkeypatch.setattr(ours, "_forward", lambda *args: pytest.fail("took the general path"))
    with torch.no_grad():
        for args in ((x, h), (x,), (unbatched, h[:, 0]), (unbatched,)):
            expected, actual = theirs(*args), ours(*args)
            for what, a, e in zip(("out", "h_n"), actual, expected):
                assert a.shape == e.shape, what
                assert_close(a.numpy(), e.numpy(), np.float32, what)
        packed = ours.__dict__["_step_packings"]  # the path ran
        assert len(packed.cores) == 1  # one StackStep for the layer-directions
        ours(x, h)
        assert ours.__dict__["_step_packings"] is packed  # not packed again
        for module in (theirs, ours):
            module.weight_hh_l0.mul_(0.5)  # in place: a new version
        assert_close(ours(x, h)[1].numpy(), theirs(x, h)[1].numpy(), np.float32, "edited")
    monkeypatch.setattr(ours, "_forward", general)  # sequences take it
    ours.train()
    theirs.train()
    sequence = torch.randn(4, B, I)
    if config.get("batch_first"):
        sequence = sequence.transpose(0, 1)
    for module in (theirs, ours):  # a training step updating through .data, then a step call
        module(sequence)[0].square().sum().backward()
        for p in module.parameters():
            p.data.add_(p.grad, alpha=-0.2)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        assert_close(ours(x, h)[1].numpy(), theirs(x, h)[1].numpy(), np.float32, "trained")
        for module in (theirs, ours):  # through .data outside training: flatten_parameters()
            module.weight_ih_l0.data.mul_(0.5)
            module.flatten_parameters()
        assert_close(ours(x, h)[1].numpy(), theirs(x, h)[1].numpy(), np.float32, "flattened")
