"""eigengru.torch.quantize in a user's PyTorch script: a model with an nn.GRU inside, trained
a little, its GRU swapped for the quantized module, run on padded and packed batches, saved
with torch.save and loaded again; gradients refused."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import eigengru.torch as et  # noqa: E402


class Tagger(torch.nn.Module):
    def __init__(self, gru):
        super().__init__()
        self.gru = gru
        self.head = torch.nn.Linear(2 * 24, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        if isinstance(out, torch.nn.utils.rnn.PackedSequence):
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        return self.head(out)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
@pytest.mark.parametrize("kind", ["torch.nn.GRU", "eigengru.torch.GRU"])
def test_a_trained_model_with_its_gru_quantized(precision, kind):
    torch.manual_seed(0)
    make = torch.nn.GRU if kind == "torch.nn.GRU" else et.GRU
    model = Tagger(make(6, 24, num_layers=2, batch_first=True, bidirectional=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(8, 15, 6)
    target = torch.randint(0, 3, (8, 15))
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 3), target.reshape(-1))
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        want = model(x)
        lengths = [15, 4, 9, 15, 1, 7, 12, 3]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        want_packed = model(packed)
    model.gru = et.quantize(model.gru, precision)
    assert isinstance(model.gru, et.QuantizedGRU) and list(model.gru.parameters()) == []
    with torch.no_grad():
        got = model(x)
        got_packed = model(packed)
    # the logits move by a small fraction of their range, and the predicted tags hardly at all
    for quantized, float_ in ((got, want), (got_packed, want_packed)):
        assert 0 < (quantized - float_).abs().max() < 0.03 * float_.abs().max()
        assert (quantized.argmax(-1) == float_.argmax(-1)).float().mean() > 0.95
    # the packed rows past each length are padding: their logits are the head's bias alone
    for b, n in enumerate(lengths):
        assert torch.allclose(got_packed[b, n:], model.head.bias.expand(15 - n, 3)) or n == 15
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(x), got)


def test_the_quantized_module_matches_eigengrus_quantized_model_and_state():
    torch.manual_seed(1)
    module = torch.nn.GRU(4, 10)
    q = et.quantize(module, "int8")
    x = torch.randn(6, 3, 4)
    h0 = torch.randn(1, 3, 10)
    out, h_n = q(x, h0)
    want = eigengru_model = q.quantized
    assert eigengru_model.precision == "int8"
    np_out, np_h = want(x.numpy(), h0.numpy())
    assert np.array_equal(out.numpy(), np_out) and np.array_equal(h_n.numpy(), np_h)
    unbatched, _ = q(x[:, 0], h0[:, 0])
    assert torch.equal(unbatched, out[:, 0])


def test_refusals():
    module = torch.nn.GRU(4, 10)
    q = et.quantize(module, "bfloat16")
    x = torch.randn(6, 3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="inference only, there is no backward"):
        q(x)
    with torch.no_grad():
        q(x)  # no graph: allowed
    with pytest.raises(TypeError, match="expected a CPU float32 tensor"):
        q(torch.randn(6, 3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.GRU or eigengru\.torch\.GRU"):
        et.quantize(torch.nn.LSTM(4, 10), "int8")
    with pytest.raises(ValueError, match="precision: expected one of"):
        et.quantize(module, "int4")
    with pytest.raises(TypeError, match=r"eigengru\.torch\.quantize"):
        et.QuantizedGRU(module)


def test_a_reset_before_eigengru_module_keeps_its_formulation():
    module = et.GRU(4, 10, reset_after=False)
    q = et.quantize(module, "bfloat16")
    assert q.quantized.reset_after is False
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        assert (q(x)[0] - module(x)[0]).abs().max() < 1e-2
