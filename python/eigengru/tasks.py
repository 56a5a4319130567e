"""Synthetic sequence tasks that need long-range memory, generated on the fly from a seed."""

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
    baseline = 1.0 / 6.0
    loss_name = "mse"

    def __init__(self, seq_len: int, seed: int | None = None) -> None:
        if seq_len < 2:
            raise ValueError(f"--seq-len: the adding problem needs at least 2 steps, got {seq_len}")
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


class CopyTask:
    """The copy (recall) task: `symbols` random symbols out of `alphabet`, then blanks, then a
    delimiter; the model must output the symbols, in order, over the last `symbols` steps.
    Guessing scores a cross-entropy of ln(alphabet)."""

    name = "copy"
    loss_name = "cross-entropy"

    def __init__(self, seq_len: int, seed: int | None = None, symbols: int = 5,
                 alphabet: int = 8) -> None:
        if seq_len < 2 * symbols + 1:
            raise ValueError(f"--seq-len: the copy task needs at least {2 * symbols + 1} steps "
                             f"(2 x {symbols} symbols + delimiter), got {seq_len}")
        self.seq_len, self.symbols, self.alphabet = seq_len, symbols, alphabet
        self.input_size = alphabet + 2  # the symbols, blank, delimiter
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


TASKS = {"adding": AddingProblem, "copy": CopyTask}
