"""Timing eigengru against its peers on identical weights and inputs, in one run.

Used by ``eigengru bench`` and by the benchmark suite (``benchmarks/run.py``). PyTorch and ONNX
Runtime are timed when installed, and JAX when asked for (its CPU backend sizes its thread pool
when it starts, so the suite times it in a process of its own per thread count). Peers are
interleaved repeat by repeat, after a warm-up, and each cell reports the median, min and max of
the repeats.

Each timed call directly follows an untimed call of the same library, so that every library is
timed as it runs in a loop of its own calls, not while the core recovers from the previous
library's work (caches, predictors, clocks), an order-dependent bias of a fifth of a short
call's time (BENCHMARKS.md).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import interop
from .gru import GRU
from .threads import get_num_threads, set_num_threads

#: The standard shapes (T, B, I, H).
SHAPES = {
    "stream": (1000, 1, 16, 64),
    "small": (100, 16, 32, 64),
    "medium": (100, 64, 128, 256),
    "large": (50, 64, 512, 1024),
    "wide": (50, 256, 64, 128),
}
MODES = ("inference", "training")


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """``"T,B,I,H"`` as four positive integers; ValueError with a one-line message otherwise."""
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise ValueError(f"expected T,B,I,H (four positive integers), got {text!r}")
    return dims


def forward_flops(steps: int, batch: int, inputs: int, hidden: int) -> float:
    """2 T B 3H (I + H): the multiply-adds of a forward pass; training counts 3x this."""
    return 2.0 * steps * batch * 3 * hidden * (inputs + hidden)


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ms = [s * 1e3 for s in seconds]
        return cls(statistics.median(ms), min(ms), max(ms))


@dataclass
class Cell:
    shape: str
    dims: tuple[int, int, int, int]
    threads: int
    mode: str
    timings: dict[str, Timing] = field(default_factory=dict)

    @property
    def forward_equivalents(self) -> int:
        """The cell's work in forward passes: forward + backward counts as 3."""
        return 3 if self.mode == "training" else 1

    @property
    def gflops(self) -> float:
        flops = forward_flops(*self.dims) * self.forward_equivalents
        return flops / (self.timings["eigengru"].median_ms * 1e-3) / 1e9

    def ratio(self, peer: str) -> float | None:
        """How many times faster eigengru is than ``peer`` (median against median)."""
        if peer not in self.timings:
            return None
        return self.timings[peer].median_ms / self.timings["eigengru"].median_ms

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "dims": list(self.dims), "threads": self.threads,
                "mode": self.mode, "gflops": self.gflops,
                "timings": {k: asdict(v) for k, v in self.timings.items()}}


def float32_forward_errors(dims, seed: int) -> tuple[float, float]:
    """Max |error| of eigengru's and of torch's float32 forward (output and final state)
    against a float64 eigengru run of the same ``torch.nn.GRU`` weights and N(0, 1) inputs,
    drawn after ``torch.manual_seed(seed)``. Needs PyTorch; used by the accuracy benchmark and
    its test."""
    import torch

    T, B, I, H = dims
    torch.manual_seed(seed)
    module = torch.nn.GRU(I, H)
    x = torch.randn(T, B, I)
    exact = interop.from_torch(module, dtype=np.float64)(x.numpy().astype(np.float64))
    ours = interop.from_torch(module, dtype=np.float32)(x.numpy())
    with torch.inference_mode():
        theirs = [t.numpy() for t in module(x)]

    def error(result) -> float:
        return float(max(np.abs(r - e).max() for r, e in zip(result, exact)))

    return error(ours), error(theirs)


def available_peers() -> list[str]:
    peers = []
    try:
        import torch  # noqa: F401

        peers.append("torch")
    except ImportError:
        pass
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        peers.append("onnxruntime")
    except ImportError:
        pass
    return peers


def _runners(dims, mode: str, threads: int, peers: Iterable[str],
             seed: int) -> dict[str, Callable[[], Any]]:
    """One zero-argument callable per library, each doing the same work on the same data."""
    steps, batch, inputs, hidden = dims
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    grad = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    gru = GRU(inputs, hidden, seed=seed)
    runners: dict[str, Callable[[], Any]] = {}
    if mode == "inference":
        runners["eigengru"] = lambda: gru(x)
    else:
        def eigengru_training():
            gru.forward(x, train=True)
            gru.backward(grad)
        runners["eigengru"] = eigengru_training

    if "torch" in peers:
        import torch

        torch.set_num_threads(threads)
        module = torch.nn.GRU(inputs, hidden)
        module.load_state_dict(interop.to_torch_state_dict(gru))
        xt, gt = torch.from_numpy(x), torch.from_numpy(grad)
        if mode == "inference":
            def torch_inference():
                with torch.inference_mode():
                    module(xt)
            runners["torch"] = torch_inference
        else:
            def torch_training():
                xr = xt.detach().requires_grad_(True)  # dx is computed, as eigengru's is
                out, _ = module(xr)
                out.backward(gt)
                module.zero_grad(set_to_none=True)
            runners["torch"] = torch_training

    if "jax" in peers:
        runners["jax"] = _jax_runner(gru, x, grad, mode)

    if "onnxruntime" in peers and mode == "inference":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # ONNX Runtime's pool otherwise spins between runs, stealing cores from the library
        # timed next; eigengru and torch threads sleep soon after their parallel regions end.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with tempfile.TemporaryDirectory() as folder:
            path = f"{folder}/gru.onnx"
            interop.to_onnx(gru, path)
            session = onnxruntime.InferenceSession(path, options,
                                                   providers=["CPUExecutionProvider"])
        runners["onnxruntime"] = lambda: session.run(None, {"X": x})
    return runners


def _jax_runner(gru: GRU, x: np.ndarray, grad: np.ndarray, mode: str) -> Callable[[], Any]:
    """The GRU in JAX as one would write it: the input projection for all steps, then a
    ``jax.lax.scan`` over the steps, jitted; training is ``jax.value_and_grad`` of
    ``sum(out * grad)`` with respect to the weights and the input (dx, as the others compute).
    Checked against eigengru's output before it is timed."""
    import jax
    import jax.numpy as jnp

    params = tuple(jnp.asarray(p) for _, p in gru.parameters())
    xj, gj = jnp.asarray(x), jnp.asarray(grad)
    h0 = jnp.zeros((x.shape[1], gru.hidden_size), x.dtype)

    def forward(params, x):
        w_ih, w_hh, b_ih, b_hh = params
        gx = x @ w_ih.T + b_ih

        def step(h, gx_t):
            x_r, x_z, x_n = jnp.split(gx_t, 3, axis=-1)
            h_r, h_z, h_n = jnp.split(h @ w_hh.T + b_hh, 3, axis=-1)
            r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
            n = jnp.tanh(x_n + r * h_n)
            h = (1 - z) * n + z * h
            return h, h

        return jax.lax.scan(step, h0, gx)[1]

    infer = jax.jit(forward)
    train = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(forward(p, x) * gj), argnums=(0, 1)))
    got = np.asarray(infer(params, xj))
    want, _ = gru(x)
    if not np.allclose(got, want, atol=1e-4):
        raise AssertionError(f"the JAX GRU differs from eigengru by {np.abs(got - want).max()}")
    if mode == "inference":
        return lambda: jax.block_until_ready(infer(params, xj))
    return lambda: jax.block_until_ready(train(params, xj))


#: Short cells repeat until their timed calls add up to this many seconds (at most
#: MAX_REPEATS repeats), so that a disturbance of a few tenths of a second on the shared machine
#: touches a minority of the samples and moves no median.
MIN_SECONDS = 1.0
MAX_REPEATS = 101


ONE_THREAD = "eigengru, 1 thread"


def time_cell(shape: str, dims, mode: str, threads: int, peers: Iterable[str] = (),
              repeats: int = 5, seed: int = 0, one_thread: bool = False) -> Cell:
    """Times one cell: every library on the same data, interleaved, after a warm-up; at least
    `repeats` repeats, more for short cells (see MIN_SECONDS). With `one_thread` and more than
    one thread, eigengru at 1 thread too (timings[ONE_THREAD]), interleaved with the rest, so
    that the speed-up over 1 thread compares calls made in the same minutes of a shared host."""
    before = get_num_threads()
    set_num_threads(threads)
    try:
        runners = _runners(dims, mode, threads, list(peers), seed)
        if one_thread and threads > 1:
            runners[ONE_THREAD] = _on_one_thread(runners["eigengru"], threads)
        for run in runners.values():  # warm-up: first-touch memory, thread pools, caches
            run()
            run()
        samples: dict[str, list[float]] = {name: [] for name in runners}
        done = 0
        while done < repeats or (done < MAX_REPEATS and
                                 sum(map(sum, samples.values())) < MIN_SECONDS):
            done += 1
            for name, run in runners.items():
                run()  # untimed: the timed call follows a call of the same library
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
    finally:
        set_num_threads(before)
    cell = Cell(shape, tuple(dims), threads, mode)
    cell.timings = {name: Timing.of(s) for name, s in samples.items()}
    return cell


def _on_one_thread(run: Callable[[], Any], threads: int) -> Callable[[], Any]:
    """run() with the library set to 1 thread for the call, then back to `threads`."""
    def one_thread() -> Any:
        set_num_threads(1)
        try:
            return run()
        finally:
            set_num_threads(threads)
    return one_thread


def format_table(cells: list[Cell], extra: Callable[[Cell], list[str]] | None = None,
                 extra_headers: list[str] | None = None) -> str:
    """A Markdown table of the cells."""
    peers = [p for p in ("torch", "onnxruntime") if any(p in c.timings for c in cells)]
    headers = ["shape (T,B,I,H)", "threads", "mode", "eigengru ms (min-max)", "GFLOP/s"]
    for p in peers:
        headers += [f"{p} ms", f"x vs {p}"]
    headers += extra_headers or []
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for c in cells:
        e = c.timings["eigengru"]
        row = [f"{c.shape} ({','.join(map(str, c.dims))})", str(c.threads), c.mode,
               f"{e.median_ms:.3f} ({e.min_ms:.3f}-{e.max_ms:.3f})", f"{c.gflops:.1f}"]
        for p in peers:
            t = c.timings.get(p)
            row += [f"{t.median_ms:.3f}" if t else "-", f"{c.ratio(p):.2f}x" if t else "-"]
        row += extra(c) if extra else []
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
