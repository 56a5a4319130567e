"""A word-level language model's whole life, as a PyTorch script lives it, with nn.GRU swapped
for eigengru.torch.GRU by one line: train with SGD and clipping, torch.save the whole model,
load it weights-only, flatten_parameters(), evaluate, then sample one token at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="eigengru.torch needs PyTorch (torch==2.13.0)")

from torch import nn  # noqa: E402

import eigengru.torch  # noqa: E402

VOCAB, EMBED, HIDDEN, LAYERS, BPTT, BATCH, STEPS = 40, 16, 24, 2, 12, 8, 30


class WordLM(nn.Module):
    """Embedding -> 2-layer GRU with dropout -> linear decoder, as in PyTorch's examples."""

    def __init__(self, rnn_class, dropout, dtype):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(VOCAB, EMBED, dtype=dtype)
        self.rnn = rnn_class(EMBED, HIDDEN, LAYERS, dropout=dropout, dtype=dtype)
        self.decoder = nn.Linear(HIDDEN, VOCAB, dtype=dtype)

    def forward(self, tokens, hidden=None):
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(output)), hidden


def corpus(length, seed):
    """Token ids from a fixed random Markov chain, so that there is something to learn."""
    g = torch.Generator().manual_seed(0)
    transitions = torch.softmax(3 * torch.randn(VOCAB, VOCAB, generator=g), dim=1)
    g.manual_seed(seed)
    tokens = [0]
    for _ in range(length - 1):
        tokens.append(int(torch.multinomial(transitions[tokens[-1]], 1, generator=g)))
    return torch.tensor(tokens)


def batchify(tokens):
    columns = len(tokens) // BATCH
    return tokens[: columns * BATCH].view(BATCH, columns).t().contiguous()  # (time, batch)


def evaluate(model, data):
    model.eval()
    total, hidden = 0.0, None
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, BPTT):
            inputs, targets = data[i:i + BPTT], data[i + 1:i + 1 + BPTT]
            inputs = inputs[: len(targets)]
            logits, hidden = model(inputs, hidden)
            total += len(inputs) * nn.functional.cross_entropy(
                logits.view(-1, VOCAB), targets.reshape(-1)).item()
    return total / (data.size(0) - 1)


def life(rnn_class, dropout, dtype, path):
    torch.manual_seed(1111)
    model = WordLM(rnn_class, dropout, dtype)
    train_data, valid_data = batchify(corpus(BATCH * 120, 1)), batchify(corpus(BATCH * 40, 2))
    losses, hidden, lr = [], None, 2.0
    model.train()
    for step in range(STEPS):
        i = (step * BPTT) % (train_data.size(0) - 1 - BPTT)
        inputs, targets = train_data[i:i + BPTT], train_data[i + 1:i + 1 + BPTT]
        hidden = None if hidden is None else hidden.detach()  # truncated BPTT
        model.zero_grad()
        logits, hidden = model(inputs, hidden)
        loss = nn.functional.cross_entropy(logits.view(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    torch.save(model, path)

    allowed = [rnn_class, WordLM, nn.Dropout, nn.Embedding, nn.Linear]
    with torch.serialization.safe_globals(allowed):
        model = torch.load(path, weights_only=True)
    model.rnn.flatten_parameters()
    valid_loss = evaluate(model, valid_data)

    generator = torch.Generator().manual_seed(42)
    token, hidden, words = torch.tensor([[3]]), None, []
    with torch.no_grad():
        for _ in range(25):
            logits, hidden = model(token, hidden)  # one step, the state carried by the caller
            word = int(torch.multinomial(torch.softmax(logits[0, 0].double(), 0), 1,
                                         generator=generator))
            words.append(word)
            token.fill_(word)
    return losses, valid_loss, words


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_language_model_life_matches_nn_gru(dtype, tmp_path):
    theirs = life(nn.GRU, 0.0, dtype, tmp_path / "theirs.pt")
    ours = life(eigengru.torch.GRU, 0.0, dtype, tmp_path / "ours.pt")
    rtol = 1e-9 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(ours[0], theirs[0], rtol=rtol)
    assert math.isclose(ours[1], theirs[1], rel_tol=rtol)
    assert ours[2] == theirs[2]
    assert ours[0][-1] < 0.8 * ours[0][0]  # it learned
    assert ours[1] < math.log(VOCAB)  # better than chance on held-out text


def test_language_model_life_with_dropout(tmp_path):
    losses, valid_loss, words = life(eigengru.torch.GRU, 0.2, torch.float32,
                                     tmp_path / "dropout.pt")
    assert losses[-1] < 0.9 * losses[0]
    assert valid_loss < math.log(VOCAB)
    assert len(words) == 25 and all(0 <= w < VOCAB for w in words)
