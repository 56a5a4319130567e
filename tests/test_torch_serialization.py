"""eigengru.torch.GRU and eigengru.GRU survive what scripts do with models: pickle, copy,
torch.save / torch.load (also weights-only), and a trip to a spawned worker process."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")

import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

import eigengru.torch as egt  # noqa: E402

from .conftest import assert_close  # noqa: E402

T, B, I, H = 5, 3, 4, 6


class Tagger(nn.Module):
    """A user's model around the GRU."""

    def __init__(self, gru_class=egt.GRU, **kwargs):
        super().__init__()
        self.rnn = gru_class(I, H, num_layers=2, bidirectional=True, dtype=torch.float64, **kwargs)
        self.head = nn.Linear(2 * H, 2, dtype=torch.float64)

    def forward(self, x, h=None):
        out, h_n = self.rnn(x, h)
        return self.head(out), h_n


def torch_save_load(model, weights_only):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    if not weights_only:
        return torch.load(buffer, weights_only=False)
    with torch.serialization.safe_globals([egt.GRU, Tagger, nn.Linear]):
        return torch.load(buffer, weights_only=True)


ROUND_TRIPS = {
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "deepcopy": copy.deepcopy,
    "torch.save": lambda m: torch_save_load(m, weights_only=False),
    "torch.save-weights_only": lambda m: torch_save_load(m, weights_only=True),
}


def outputs_and_grads(model, x, h):
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out, h_n = model(x, h)
    g = torch.Generator().manual_seed(7)
    (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum().backward()
    return out.detach(), h_n.detach(), x.grad, {n: p.grad.clone() for n, p in
                                                model.named_parameters()}


@pytest.mark.parametrize("trip", ROUND_TRIPS)
@pytest.mark.parametrize("alone", [True, False], ids=["module", "inside-model"])
def test_round_trip_gives_an_equal_independent_model(trip, alone):
    torch.manual_seed(0)
    model = Tagger(dropout=0.25, reset_after=False)
    model.train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    h = torch.randn(4, B, H, dtype=torch.float64)
    model(x)[0].sum().backward()  # a used model: its pool holds a training cache
    original = model.rnn if alone else model
    copied = ROUND_TRIPS[trip](original)
    assert type(copied) is type(original)
    assert copied.training
    gru = copied if alone else copied.rnn
    assert (gru.dropout, gru.reset_after, gru.num_layers, gru.bidirectional) == \
        (0.25, False, 2, True)
    for (name, a), (_, b) in zip(original.named_parameters(), copied.named_parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    original.eval()
    copied.eval()
    expected = outputs_and_grads(original, x, h)
    actual = outputs_and_grads(copied, x, h)
    for what, a, e in zip(("out", "h_n", "dx"), actual[:3], expected[:3]):
        assert torch.equal(a, e), what
    for name, e in expected[3].items():
        assert torch.equal(actual[3][name], e), name
    # Independent: training the copy leaves the original as it was.
    before = {n: p.detach().clone() for n, p in original.named_parameters()}
    optimizer = torch.optim.SGD(copied.parameters(), lr=0.5)
    optimizer.step()
    for name, p in original.named_parameters():
        assert torch.equal(p, before[name]), name
    assert not all(torch.equal(p, before[n]) for n, p in copied.named_parameters())


def test_shallow_copy_shares_parameters_as_nn_gru_does():
    for cls in (nn.GRU, egt.GRU):
        module = cls(I, H, dtype=torch.float64)
        twin = copy.copy(module)
        assert twin.weight_hh_l0 is module.weight_hh_l0, cls
        x = torch.randn(T, B, I, dtype=torch.float64)
        assert torch.equal(twin(x)[0], module(x)[0])


def test_weights_only_load_needs_no_private_global():
    """The classes a user lists for nn.GRU (its own and torch's) with eigengru's GRU in
    nn.GRU's place are enough; nothing of eigengru beyond the class is in the file."""
    model = Tagger()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(buffer.getvalue()))
    assert sorted(unsafe) == sorted(["eigengru.torch.GRU", f"{__name__}.Tagger",
                                     "torch.nn.modules.linear.Linear"])
    reference = io.BytesIO()
    torch.save(Tagger(nn.GRU), reference)
    unsafe_nn = torch.serialization.get_unsafe_globals_in_checkpoint(
        io.BytesIO(reference.getvalue()))
    assert sorted(u.replace("torch.nn.modules.rnn.GRU", "eigengru.torch.GRU") for u in unsafe_nn) \
        == sorted(unsafe)


def test_state_dict_file_loads_both_ways():
    """The common pattern: torch.save(model.state_dict()) and a weights-only load into either."""
    torch.manual_seed(3)
    ours = Tagger()
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    theirs = Tagger(nn.GRU)
    theirs.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x)[0].numpy(), theirs(x)[0].numpy(), np.float64, "out")


def _spawned_worker(rank, module, x, results):
    with torch.no_grad():
        out, h_n = module(x)
    results.put((out.numpy(), h_n.numpy()))  # by value: the worker is gone when they are read


def test_module_goes_to_a_spawned_worker():
    torch.manual_seed(4)
    module = egt.GRU(I, H, num_layers=2, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64)
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.spawn(_spawned_worker, args=(module, x, results), nprocs=1, join=True)
    out, h_n = results.get()
    with torch.no_grad():
        expected_out, expected_h_n = module(x)
    assert np.array_equal(out, expected_out.numpy()) and np.array_equal(h_n, expected_h_n.numpy())
