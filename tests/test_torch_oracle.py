"""PyTorch's nn.GRU as the oracle for every layer feature: layers x directions x batch_first x
lengths x h0 x dtype, forward and every gradient, on random data."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import eigengru

from .conftest import assert_close, feature_grid, feature_id

torch = pytest.importorskip("torch",
                            reason="PyTorch is the oracle here (pip install torch==2.13.0)")

STEPS, BATCH, INPUT, HIDDEN = 7, 4, 5, 6
CASES = feature_grid([np.float32, np.float64])


def case_id(case):
    return feature_id(case, ("full", "len"), ("noh0", "h0"))


def torch_run(module, x, h0, lengths, grad_out, grad_h_n):
    """nn.GRU forward and backward of sum(out * grad_out) + sum(h_n * grad_h_n)."""
    xt = torch.tensor(x, requires_grad=True)
    h0t = None if h0 is None else torch.tensor(h0, requires_grad=True)
    if lengths is None:
        out, h_n = module(xt, h0t)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=module.batch_first, enforce_sorted=False)
        out, h_n = module(packed, h0t)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=module.batch_first, total_length=STEPS)
    loss = (out * torch.tensor(grad_out)).sum() + (h_n * torch.tensor(grad_h_n)).sum()
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return (out.detach().numpy(), h_n.detach().numpy(), xt.grad.numpy(),
            None if h0 is None else h0t.grad.numpy(), grads)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case):
    layers, bidirectional, batch_first, with_lengths, with_h0, dtype = case
    rng = np.random.default_rng(zlib.crc32(case_id(case).encode()))
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    torch.manual_seed(0)
    module = torch.nn.GRU(INPUT, HIDDEN, num_layers=layers, bidirectional=bidirectional,
                          batch_first=batch_first, dtype=torch_dtype)
    gru = eigengru.GRU(INPUT, HIDDEN, num_layers=layers, bidirectional=bidirectional,
                       batch_first=batch_first, dtype=dtype)
    gru.load_state_dict(module.state_dict())

    directions = 2 if bidirectional else 1
    x_shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    out_shape = (*x_shape[:2], directions * HIDDEN)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = (rng.standard_normal((layers * directions, BATCH, HIDDEN)).astype(dtype) if with_h0
          else None)
    lengths = rng.integers(1, STEPS + 1, BATCH) if with_lengths else None
    if with_lengths:
        lengths[0] = STEPS  # pad_packed_sequence needs one full row to give T steps back
    grad_out = rng.standard_normal(out_shape).astype(dtype)
    grad_h_n = rng.standard_normal((layers * directions, BATCH, HIDDEN)).astype(dtype)

    t_out, t_h_n, t_dx, t_dh0, t_grads = torch_run(module, x, h0, lengths, grad_out, grad_h_n)

    out, h_n = gru(x, h0, lengths=lengths)
    assert_close(out, t_out, dtype, "inference out")
    assert_close(h_n, t_h_n, dtype, "inference h_n")
    out, h_n = gru.forward(x, h0, lengths=lengths, train=True)
    assert_close(out, t_out, dtype, "training out")
    dx, dh0 = gru.backward(grad_out, grad_h_n)
    assert_close(dx, t_dx, dtype, "dx")
    if with_h0:
        assert_close(dh0, t_dh0, dtype, "dh0")
    assert set(gru.grads) == set(t_grads)
    for name, expected in t_grads.items():
        assert_close(gru.grads[name], expected, dtype, name)


def test_unbatched_input_matches_torch():
    module = torch.nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, dtype=torch.float64)
    gru = eigengru.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, dtype=np.float64)
    gru.load_state_dict(module.state_dict())
    rng = np.random.default_rng(5)
    x = rng.standard_normal((STEPS, INPUT))
    h0 = rng.standard_normal((4, HIDDEN))
    t_out, t_h_n = module(torch.tensor(x), torch.tensor(h0))
    out, h_n = gru(x, h0)
    assert out.shape == (STEPS, 2 * HIDDEN) and h_n.shape == (4, HIDDEN)
    assert_close(out, t_out.detach().numpy(), np.float64, "out")
    assert_close(h_n, t_h_n.detach().numpy(), np.float64, "h_n")
    gru.forward(x, h0, train=True)
    dx, dh0 = gru.backward(np.ones_like(out), np.ones_like(h_n))
    assert dx.shape == x.shape and dh0.shape == h0.shape


def test_state_dict_round_trips_to_torch():
    gru = eigengru.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, seed=3)
    module = torch.nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in gru.state_dict().items()})
    assert list(gru.state_dict()) == list(module.state_dict())
    for name, p in module.state_dict().items():
        np.testing.assert_array_equal(p.numpy(), getattr(gru, name))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_directions_side_by_side_match_torch(threads):
    """With fewer batch rows than threads, the two directions run at once on split threads."""
    before = eigengru.get_num_threads()
    eigengru.set_num_threads(threads)
    try:
        rng = np.random.default_rng(threads)
        module = torch.nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, dtype=torch.float64)
        gru = eigengru.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True, dtype=np.float64)
        gru.load_state_dict(module.state_dict())
        x = rng.standard_normal((STEPS, 1, INPUT))
        grad_out = rng.standard_normal((STEPS, 1, 2 * HIDDEN))
        grad_h_n = rng.standard_normal((4, 1, HIDDEN))
        t_out, t_h_n, t_dx, _, t_grads = torch_run(module, x, None, None, grad_out, grad_h_n)
        out, h_n = gru.forward(x, train=True)
        assert_close(out, t_out, np.float64, "out")
        assert_close(h_n, t_h_n, np.float64, "h_n")
        dx, _ = gru.backward(grad_out, grad_h_n)
        assert_close(dx, t_dx, np.float64, "dx")
        for name, expected in t_grads.items():
            assert_close(gru.grads[name], expected, np.float64, name)
    finally:
        eigengru.set_num_threads(before)
