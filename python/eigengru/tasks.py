"""Synthetic sequence tasks that need long-range memory, generated on the fly from a seed.

A task makes batches and knows how a model is scored on them: which of the GRU's outputs the
read-out layer sees (``readout``), the loss of the read-out's prediction and its gradient
(``loss``), and where that gradient enters the GRU (``readout_gradients``, the arguments of
``GRU.backward``). A training loop is then the same for every task::

    out, h_n = gru.forward(batch.x, train=True)
    loss, grad = task.loss(head(task.readout(out, h_n)), batch.target)
    gru.backward(*task.readout_gradients(out, h_n, head.backward(grad)))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    x: np.ndarray        # (T, B, input_size)
    target: np.ndarray   # adding: (B,); copy: (S, B) symbol indices


class AddingProblem:
    """Hochreiter & Schmidhuber's adding problem: each step is (value, marker), values uniform in
    [0, 1), exactly one marked step in each half of the sequence; the target is the sum of the two
    marked values. Predicting the mean (1.0) scores an MSE of 1/6 ~ 0.167."""

    name = "adding"
    input_size = 2
    outputs = 1  # the predicted sum
    baseline = 1.0 / 6.0
    loss_name = "mse"

    def __init__(self, seq_len: int, seed: int | None = None) -> None:
        if seq_len < 2:
            raise ValueError(f"seq_len: the adding problem needs at least 2 steps, got {seq_len}")
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> Batch:
        T, half, rng = self.seq_len, self.seq_len // 2, self.rng
        values = rng.random((T, size))
        markers = np.zeros((T, size))
        columns = np.arange(size)
        markers[rng.integers(0, half, size), columns] = 1.0
        markers[rng.integers(half, T, size), columns] = 1.0
        x = np.stack([values, markers], axis=-1).astype(np.float32)
        return Batch(x, (values * markers).sum(axis=0).astype(np.float32))

    @staticmethod
    def readout(out: np.ndarray, h_n: np.ndarray) -> np.ndarray:
        """The top layer's final state, (B, H)."""
        return h_n[-1]

    @staticmethod
    def loss(prediction: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean squared error of prediction (B, 1) and its gradient."""
        error = prediction[:, 0] - target
        return float(np.mean(error**2)), (2.0 * error / error.size)[:, None]

    @staticmethod
    def readout_gradients(out: np.ndarray, h_n: np.ndarray, grad: np.ndarray):
        """(grad_out, grad_h_n) for GRU.backward from the gradient of the read-out's input."""
        grad_h_n = np.zeros_like(h_n)
        grad_h_n[-1] = grad
        return None, grad_h_n


class CopyTask:
    """The copy (recall) task: `symbols` random symbols out of `alphabet`, then blanks, then a
    delimiter; the model must output the symbols, in order, over the last `symbols` steps.
    Guessing scores a cross-entropy of ln(alphabet)."""

    name = "copy"
    loss_name = "cross-entropy"

    def __init__(self, seq_len: int, seed: int | None = None, symbols: int = 5,
                 alphabet: int = 8) -> None:
        if seq_len < 2 * symbols + 1:
            raise ValueError(f"seq_len: the copy task needs at least {2 * symbols + 1} steps "
                             f"(2 x {symbols} symbols + delimiter), got {seq_len}")
        self.seq_len, self.symbols, self.alphabet = seq_len, symbols, alphabet
        self.input_size = alphabet + 2  # the symbols, blank, delimiter
        self.outputs = alphabet  # a logit per symbol
        self.baseline = float(np.log(alphabet))
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> Batch:
        T, S, K = self.seq_len, self.symbols, self.alphabet
        sequence = self.rng.integers(0, K, (S, size))
        codes = np.full((T, size), K)  # blank
        codes[:S] = sequence
        codes[T - S - 1] = K + 1  # delimiter: recall starts on the next step
        x = np.eye(self.input_size, dtype=np.float32)[codes]
        return Batch(x, sequence)

    def readout(self, out: np.ndarray, h_n: np.ndarray) -> np.ndarray:
        """The outputs of the recall steps, (S, B, H)."""
        return out[-self.symbols:]

    @staticmethod
    def loss(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean cross-entropy of logits (S, B, alphabet) against symbols (S, B), and its
        gradient."""
        shifted = logits - logits.max(axis=-1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=-1, keepdims=True)
        picked = np.take_along_axis(p, target[..., None], axis=-1)[..., 0]
        loss = float(-np.mean(np.log(picked + 1e-12)))
        grad = p
        np.put_along_axis(grad, target[..., None], picked[..., None] - 1.0, axis=-1)
        return loss, (grad / target.size).astype(logits.dtype)

    def readout_gradients(self, out: np.ndarray, h_n: np.ndarray, grad: np.ndarray):
        """(grad_out, grad_h_n) for GRU.backward from the gradient of the read-out's input."""
        grad_out = np.zeros_like(out)
        grad_out[-self.symbols:] = grad
        return grad_out, None


TASKS = {"adding": AddingProblem, "copy": CopyTask}
