"""Results are bitwise repeatable at a fixed thread count and agree across thread counts."""

from __future__ import annotations

import numpy as np
import pytest

import eigengru
from eigengru import _core

from .conftest import assert_close, random_case


def run(gru, x, h0, grad_out):
    gru.zero_grad()
    out, h_n = gru.forward(x, h0, train=True)
    dx, dh0 = gru.backward(grad_out)
    return [out, h_n, dx, dh0] + [g.copy() for g in gru.grads.values()]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_bitwise_identical_run_to_run(rng, threads, reset_after, dtype):
    eigengru.set_num_threads(2)
    gru, x, h0 = random_case(rng, 15, 9, 12, 40, reset_after=reset_after, dtype=dtype)
    grad_out = rng.standard_normal((15, 9, 40)).astype(dtype)
    first = run(gru, x, h0, grad_out)
    for _ in range(3):
        for a, b in zip(first, run(gru, x, h0, grad_out)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_and_two_threads_agree(rng, threads, reset_after, dtype):
    gru, x, h0 = random_case(rng, 15, 9, 12, 40, reset_after=reset_after, dtype=dtype)
    grad_out = rng.standard_normal((15, 9, 40)).astype(dtype)
    eigengru.set_num_threads(1)
    one = run(gru, x, h0, grad_out)
    eigengru.set_num_threads(2)
    two = run(gru, x, h0, grad_out)
    for index, (a, b) in enumerate(zip(one, two)):
        assert_close(b, a, dtype, f"result {index}")


def test_thread_count_is_settable(threads):
    eigengru.set_num_threads(3)
    assert eigengru.get_num_threads() == 3
    with pytest.raises(ValueError, match="set_num_threads: n: expected a positive integer, got 0"):
        eigengru.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads: n: expected a positive integer"):
        eigengru.set_num_threads(1.5)
    assert eigengru.get_num_threads() == 3


def path_count(path: str) -> int:
    """How many layer-direction calls have taken one of the core's alternative paths."""
    return _core.path_counts()[path]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch, hidden, bidirectional, with_lengths", [
    (1, 128, False, False), (1, 200, False, True), (1, 144, True, False), (1, 140, True, True)])
def test_batch_smaller_than_threads_splits_units(rng, threads, reset_after, dtype, batch, hidden,
                                                 bidirectional, with_lengths):
    """Inference with fewer rows than threads (batch 1: on any machine with 2 or more cores)
    splits the hidden units over the threads (uneven splits, a last chunk shorter than a vector,
    a length below T, both directions): it matches the NumPy reference and the one-thread
    result."""
    from . import reference

    steps, inputs = 23, 7
    gru = eigengru.GRU(inputs, hidden, bidirectional=bidirectional, reset_after=reset_after,
                       dtype=dtype, seed=3)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-0.4, 0.4, p.shape))
    directions = 2 if bidirectional else 1
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (directions, batch, hidden)).astype(dtype)
    lengths = rng.integers(1, steps + 1, batch) if with_lengths else None
    eigengru.set_num_threads(4)  # two directions side by side: 2 threads each, both split
    before = path_count("forward_by_units")
    out, h_n = gru(x, h0, lengths=lengths)
    assert path_count("forward_by_units") == before + directions  # the split ran
    params = {name: p.astype(np.float64) for name, p in gru.parameters()}
    ref_lengths = lengths if with_lengths else np.full(batch, steps)
    ref_out, ref_h_n, *_ = reference.stack(
        params, 1, bidirectional, reset_after, x.astype(np.float64), h0.astype(np.float64),
        ref_lengths, np.zeros((steps, batch, directions * hidden)),
        np.zeros((directions, batch, hidden)))
    assert_close(out, ref_out, dtype, "out")
    assert_close(h_n, ref_h_n, dtype, "h_n")
    eigengru.set_num_threads(1)
    one_out, one_h_n = gru(x, h0, lengths=lengths)
    assert_close(out, one_out, dtype, "out vs one thread")
    assert_close(h_n, one_h_n, dtype, "h_n vs one thread")


@pytest.mark.parametrize("hidden, split", [(64, False), (127, False), (128, True), (192, True)])
def test_units_are_split_only_with_64_or_more_a_thread(rng, threads, hidden, split):
    """At batch 1 and 2 threads, a layer of fewer than 128 units runs on one thread, so that
    more threads are never slower than one (a split costs an exchange between the cores at
    every step); the choice depends on the shape and thread count alone, so the unsplit call
    gives the one-thread result bit for bit, every time."""
    gru = eigengru.GRU(9, hidden, seed=4)
    x = rng.standard_normal((17, 1, 9)).astype(np.float32)
    eigengru.set_num_threads(1)
    one, one_h_n = gru(x)
    eigengru.set_num_threads(2)
    before = path_count("forward_by_units")
    for _ in range(2):
        out, h_n = gru(x)
        if not split:
            np.testing.assert_array_equal(out, one)
            np.testing.assert_array_equal(h_n, one_h_n)
    assert path_count("forward_by_units") == before + (2 if split else 0)
    assert_close(out, one, np.float32, "out vs one thread")


def reference_case(rng, steps, batch, inputs, hidden, *, dtype, seed, reset_after=True,
                   scale=0.6, lengths=None):
    """A layer with uniform(-scale, scale) weights, random inputs, h0 and output gradients
    (zero past each row's length), and the NumPy reference's out, h_n, dx, dh0 and weight
    gradients for them: (gru, x, h0, grad_out, grad_h_n, ref)."""
    from . import reference

    gru = eigengru.GRU(inputs, hidden, reset_after=reset_after, dtype=dtype, seed=seed)
    for name, p in gru.parameters():
        setattr(gru, name, rng.uniform(-scale, scale, p.shape).astype(dtype))
    lengths = np.full(batch, steps) if lengths is None else lengths
    mask = (np.arange(steps)[:, None] < lengths[None, :])[..., None]
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (1, batch, hidden)).astype(dtype)
    grad_out = (rng.standard_normal((steps, batch, hidden)) * mask).astype(dtype)
    grad_h_n = rng.standard_normal((1, batch, hidden)).astype(dtype)
    params = {name: p.astype(np.float64) for name, p in gru.parameters()}
    ref = reference.stack(params, 1, False, reset_after, x.astype(np.float64),
                          h0.astype(np.float64), lengths, grad_out.astype(np.float64),
                          grad_h_n.astype(np.float64))
    return gru, x, h0, grad_out, grad_h_n, ref


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_backward_product_paths_match_the_reference(rng, threads, reset_after, with_lengths):
    """Backward makes dx and the weight gradients in its time loop (one thread; two threads with
    at least 64 rows each, into per-thread partial gradients) or after it (with lengths): each
    path matches the NumPy reference."""
    steps, batch = 5, 130
    lengths = rng.integers(1, steps + 1, batch) if with_lengths else np.full(batch, steps)
    gru, x, h0, grad_out, grad_h_n, ref = reference_case(
        rng, steps, batch, 3, 8, dtype=np.float64, seed=5, reset_after=reset_after,
        lengths=lengths)
    for n in (1, 2):
        eigengru.set_num_threads(n)
        gru.zero_grad()
        out, h_n = gru.forward(x, h0, lengths=lengths if with_lengths else None, train=True)
        path = ("backward_products_after" if with_lengths else
                "backward_partials" if n == 2 else "backward_products_in_loop")
        before = path_count(path)
        dx, dh0 = gru.backward(grad_out, grad_h_n)
        assert path_count(path) == before + 1, f"{path} did not run"
        for what, actual, expected in [("out", out, ref[0]), ("h_n", h_n, ref[1]),
                                       ("dx", dx, ref[2]), ("dh0", dh0, ref[3])]:
            assert_close(actual, expected, np.float64, f"{what}, {n} thread(s)")
        for name, expected in ref[4].items():
            assert_close(gru.grads[name], expected, np.float64, f"{name}, {n} thread(s)")


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_shared_backward_products_give_the_one_thread_gradients(rng, threads, reset_after, dtype):
    """With two threads and too few rows each for partial gradients of their own, the threads
    make each share of steps' products together, each a slice of the rows of dx and of every
    weight gradient (12 units: a slice ends inside a row block of the kernel), over two shares
    (7 steps of 32 rows, shares of 4 steps): the path runs and matches the NumPy reference. With
    16 rows a thread, whole row blocks of the kernel, the gate gradients are the one-thread
    ones, and so are dx, dh0 and the weight gradients, bit for bit (the bias gradients are the
    threads' column sums, added in thread order)."""
    gru, x, h0, grad_out, grad_h_n, ref = reference_case(rng, 7, 32, 5, 12, dtype=dtype, seed=6,
                                                         reset_after=reset_after)
    results = {}
    for n, path in ((1, "backward_products_in_loop"), (2, "backward_shared_products")):
        eigengru.set_num_threads(n)
        gru.zero_grad()
        gru.forward(x, h0, train=True)
        before = path_count(path)
        dx, dh0 = gru.backward(grad_out, grad_h_n)
        assert path_count(path) == before + 1, f"{path} did not run"
        results[n] = {"dx": dx, "dh0": dh0, **{k: g.copy() for k, g in gru.grads.items()}}
        assert_close(dx, ref[2], dtype, f"dx, {n} thread(s)")
        assert_close(dh0, ref[3], dtype, f"dh0, {n} thread(s)")
        for name, expected in ref[4].items():
            assert_close(gru.grads[name], expected, dtype, f"{name}, {n} thread(s)")
    for name, one in results[1].items():
        if not name.startswith("bias"):
            np.testing.assert_array_equal(results[2][name], one, err_msg=name)


@pytest.mark.parametrize("n", [1, 2])
def test_streamed_records_give_the_reference_gradients(rng, threads, n):
    """A training forward whose gate records pass 8 MB (32 steps of 64 rows of 128 units,
    float64) writes them past the caches, by non-temporal stores: the path runs, the outputs
    are inference's bit for bit, and the gradients match the NumPy reference."""
    gru, x, h0, grad_out, grad_h_n, ref = reference_case(rng, 32, 64, 3, 128, dtype=np.float64,
                                                         seed=7, scale=0.2)
    eigengru.set_num_threads(n)
    gru.zero_grad()
    before = path_count("streamed_records")
    out, h_n = gru.forward(x, h0, train=True)
    assert path_count("streamed_records") == before + 1, "the records were not streamed"
    inferred, inferred_h_n = gru(x, h0)
    np.testing.assert_array_equal(out, inferred)
    np.testing.assert_array_equal(h_n, inferred_h_n)
    dx, dh0 = gru.backward(grad_out, grad_h_n)
    assert_close(dx, ref[2], np.float64, "dx")
    assert_close(dh0, ref[3], np.float64, "dh0")
    for name, expected in ref[4].items():
        assert_close(gru.grads[name], expected, np.float64, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_single_rows_with_lengths_match_the_reference(rng, threads, dtype):
    """Two rows of different lengths: one thread steps both together, two threads one row each
    (the fused batch-1 step, H a multiple of the vector width), training and inference; every
    output matches the NumPy reference, and steps past a row's length leave it alone."""
    lengths = np.array([9, 4])
    gru, x, h0, grad_out, grad_h_n, ref = reference_case(rng, 9, 2, 5, 32, dtype=dtype, seed=3,
                                                         scale=0.5, lengths=lengths)
    for n in (1, 2):
        eigengru.set_num_threads(n)
        out, h_n = gru(x, h0, lengths=lengths)
        assert_close(out, ref[0], dtype, f"inference out, {n} thread(s)")
        assert_close(h_n, ref[1], dtype, f"inference h_n, {n} thread(s)")
        gru.zero_grad()
        out_t, h_n_t = gru.forward(x, h0, lengths=lengths, train=True)
        np.testing.assert_array_equal(out_t, out)
        np.testing.assert_array_equal(h_n_t, h_n)
        dx, dh0 = gru.backward(grad_out, grad_h_n)
        assert_close(dx, ref[2], dtype, f"dx, {n} thread(s)")
        assert_close(dh0, ref[3], dtype, f"dh0, {n} thread(s)")
        for name, expected in ref[4].items():
            assert_close(gru.grads[name], expected, dtype, f"{name}, {n} thread(s)")
