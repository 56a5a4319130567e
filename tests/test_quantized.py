"""Quantized inference (GRU.quantize, QuantizedGRU): the stored weights against NumPy's own
quantization, the forward against the NumPy reference run on those weights with its operands
quantized as documented, Stream against the forward, files, pickles and refusals."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eigengru
from eigengru import _core

from . import reference

PRECISIONS = ("bfloat16", "int8")


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def numpy_quantized(w: np.ndarray, precision: str) -> np.ndarray:
    """The values that w's quantized form stands for, computed here: bfloat16 rounding, or
    per-row int8 with scale max|w| / 127."""
    if precision == "bfloat16":
        return reference.bfloat16(w)
    w = w.astype(np.float64)
    scale = np.abs(w).max(axis=1, keepdims=True) / 127
    return np.rint(w / np.where(scale > 0, scale, 1)) * scale


def reference_params(q, gru, precision):
    """The float model's parameters with each weight matrix quantized by numpy_quantized."""
    return {name: numpy_quantized(p, precision) if name.startswith("weight") else
            p.astype(np.float64) for name, p in gru.state_dict().items()}


def test_the_stored_weights_are_numpys_quantization_of_the_float_ones():
    gru = eigengru.GRU(7, 20, num_layers=2, bidirectional=True, seed=3)
    for precision in PRECISIONS:
        q = gru.quantize(precision)
        stored = q.quantized_arrays()
        assert len(stored) == 4
        first = stored[0]
        if precision == "int8":
            assert first["weight_ih"].dtype == np.int8
            assert first["weight_ih_scales"].dtype == np.float32
            w = gru.weight_ih_l0.astype(np.float64)
            np.testing.assert_allclose(first["weight_ih_scales"], np.abs(w).max(1) / 127,
                                       rtol=1e-6)
            assert np.abs(first["weight_ih"]).max() == 127
        else:
            assert first["weight_ih"].dtype == np.uint16 and first["weight_ih_scales"] is None
        for name, value in q.state_dict().items():
            want = numpy_quantized(gru.state_dict()[name], precision) \
                if name.startswith("weight") else gru.state_dict()[name]
            np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-9, err_msg=name)


CASES = [  # (constructor arguments, lengths?)
    ({}, False),
    ({"reset_after": False}, False),
    ({"num_layers": 2, "bidirectional": True}, True),
    ({"num_layers": 2, "reset_after": False, "bidirectional": True}, True),
    ({"reverse": True}, True),
    ({"bias": False, "batch_first": True}, False),
    ({"gate_activation": ("hard_sigmoid", 0.25, 0.5), "candidate_activation": "relu",
      "clip": 2.0}, False),
]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_forward_is_the_reference_with_quantized_weights_and_operands(precision, case):
    arguments, with_lengths = CASES[case]
    rng = np.random.default_rng(case)
    T, B, I, H = 9, 4, 11, 21  # H not a multiple of the 16-row panels
    gru = eigengru.GRU(I, H, seed=case, **arguments)
    q = gru.quantize(precision)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    stacked = gru.num_layers * gru.directions
    h0 = rng.uniform(-0.8, 0.8, (stacked, B, H)).astype(np.float32)
    lengths = np.array([9, 3, 7, 1]) if with_lengths else None
    got_x = x.transpose(1, 0, 2) if gru.batch_first else x
    out, h_n = q(got_x, h0, lengths=lengths)
    if gru.batch_first:
        out = out.transpose(1, 0, 2)
    functions = reference.Functions(gru.gate_activation, gru.candidate_activation, gru.clip)
    want_out, want_h = reference.forward_stack(
        reference_params(q, gru, precision), gru.num_layers, gru.bidirectional, gru.reset_after,
        x, h0, lengths if with_lengths else [T] * B, functions,
        reference.quantized_operand(precision), reverse=gru.reverse)
    # Float32 gates and sums can move an operand across a rounding boundary of its
    # quantization now and then, which changes a pre-activation by one step of its scale.
    np.testing.assert_allclose(out, want_out, atol=2e-3, rtol=0)
    np.testing.assert_allclose(h_n, want_h, atol=2e-3, rtol=0)
    # The float model's own output is further away than that: the test tells them apart.
    float_out = gru(got_x, h0, lengths=lengths)[0]
    if gru.batch_first:
        float_out = float_out.transpose(1, 0, 2)
    assert np.abs(float_out - want_out).max() > 2 * np.abs(out - want_out).max()
    if with_lengths:
        for b, n in enumerate(lengths):
            assert not out[n:, b].any()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("reset_after", [True, False])
def test_one_step_matches_the_reference_closely(precision, reset_after):
    """One step from a given state: the operands are the same here and in the reference, so
    only float32 against float64 rounding remains."""
    rng = np.random.default_rng(5)
    gru = eigengru.GRU(13, 40, reset_after=reset_after, seed=8)
    q = gru.quantize(precision)
    x = rng.standard_normal((1, 6, 13)).astype(np.float32)
    h0 = rng.uniform(-1, 1, (1, 6, 40)).astype(np.float32)
    out, _ = q(x, h0)
    want, _ = reference.forward_stack(reference_params(q, gru, precision), 1, False,
                                      reset_after, x, h0, [1] * 6,
                                      operand=reference.quantized_operand(precision))
    np.testing.assert_allclose(out, want, atol=2e-5, rtol=0)


def assert_same(a, b, q):
    """Bit for bit, with every kernel (q's names the one that ran)."""
    assert q.kernel in ("portable", "avx512-vnni", "avx512-bf16", "avx2-maddubs", "avx2-fma")
    assert np.array_equal(a, b), q.kernel


@pytest.mark.parametrize("precision", PRECISIONS)
def test_stream_gives_the_forward_bit_for_bit_at_any_thread_count(precision, threads):
    rng = np.random.default_rng(2)
    gru = eigengru.GRU(6, 33, num_layers=2, reset_after=False, seed=4)
    q = gru.quantize(precision)
    x = rng.standard_normal((40, 3, 6)).astype(np.float32)
    results = []
    for n in (1, 2):
        eigengru.set_num_threads(n)
        results.append(q(x)[0])
    assert_same(results[0], results[1], q)
    stream = q.stream(batch=3)
    streamed = np.stack([stream.step(x_t) for x_t in x])
    assert_same(streamed, results[0], q)
    assert_same(stream.state, q(x)[1], q)
    # each row alone: rows do not depend on each other
    alone = q(x[:, 1:2])[0]
    assert_same(alone[:, 0], results[0][:, 1], q)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_single_row_takes_the_fused_step_with_a_batch_rows_values(precision):
    """One row through layers of whole 16-unit panels, reset after the product: where the
    kernels have the dot-product instruction, each step is fused with its gates, in the forward
    and in the stream. It gives what the same row gives in a batch (the tiled products), bit
    for bit, and the reference's numbers."""
    rng = np.random.default_rng(7)
    gru = eigengru.GRU(12, 48, num_layers=2, seed=9)
    q = gru.quantize(precision)
    x = rng.standard_normal((30, 3, 12)).astype(np.float32)
    h0 = rng.uniform(-0.8, 0.8, (2, 3, 12 * 4)).astype(np.float32)
    batch = q(x, h0)[0]
    before = _core.path_counts()["quantized_row_step"]
    alone = q(x[:, 1:2], h0[:, 1:2])[0][:, 0]
    stream = q.stream()
    stream.state = h0[:, 1:2]
    streamed = np.stack([stream.step(x_t) for x_t in x[:, 1:2]])[:, 0]
    fused = q.kernel != "portable"
    assert _core.path_counts()["quantized_row_step"] - before == (4 if fused else 0)
    assert_same(alone, batch[:, 1], q)
    assert_same(streamed, alone, q)
    want, _ = reference.forward_stack(reference_params(q, gru, precision), 2, False, True,
                                      x[:, 1:2], h0[:, 1:2], [30],
                                      operand=reference.quantized_operand(precision))
    np.testing.assert_allclose(alone, want[:, 0], atol=2e-3, rtol=0)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_bidirectional_batch_of_one_runs_its_directions_side_by_side(precision, threads):
    """Fewer rows than threads: the two directions run at once, with the same numbers."""
    gru = eigengru.GRU(5, 20, num_layers=2, bidirectional=True, seed=6)
    q = gru.quantize(precision)
    x = np.random.default_rng(4).standard_normal((12, 1, 5)).astype(np.float32)
    eigengru.set_num_threads(1)
    alone = q(x)
    eigengru.set_num_threads(2)
    before = _core.path_counts()["directions_side_by_side"]
    side_by_side = q(x)
    assert _core.path_counts()["directions_side_by_side"] == before + 2  # once per layer
    assert np.array_equal(alone[0], side_by_side[0]) and np.array_equal(alone[1], side_by_side[1])


def test_unbatched_and_single_step_inputs():
    gru = eigengru.GRU(5, 8, seed=1)
    q = gru.quantize("int8")
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    out, h_n = q(x)
    batched_out, batched_h = q(x[:, None])
    assert out.shape == (7, 8) and h_n.shape == (1, 8)
    assert np.array_equal(out, batched_out[:, 0]) and np.array_equal(h_n, batched_h[:, 0])
    one, _ = q(x[:1])
    assert_same(one, out[:1], q)


def expected_kernels(isa: str, flags: set[str]) -> tuple[str, str]:
    """The int8 and bfloat16 kernels that kernel set `isa` runs on a CPU with `flags`: AVX-512's
    dot-product instructions where the CPU has them, the avx2 set's own products (int8 from
    vpmaddubsw, bfloat16 from float multiply-adds), else the portable products."""
    if isa == "native":  # the building machine's own set
        isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"
    if isa == "avx512":
        return ("avx512-vnni" if "avx512_vnni" in flags else "portable",
                "avx512-bf16" if "avx512_bf16" in flags else "portable")
    if isa == "avx2":
        return ("avx2-maddubs", "avx2-fma")
    return ("portable", "portable")


def test_the_kernel_in_use_is_the_cpus_dot_product_where_it_has_one():
    q8 = eigengru.GRU(3, 4, seed=0).quantize("int8")
    qb = eigengru.GRU(3, 4, seed=0).quantize("bfloat16")
    assert (q8.kernel, qb.kernel) == expected_kernels(eigengru.build_info()["isa"], cpu_flags())


def test_every_kernel_set_of_this_cpu_computes_the_same_numbers():
    """Each kernel set this CPU runs (avx512 with the dot-product instructions where the CPU has
    them, avx2 with its int8 products, baseline with the portable products) gives the same
    model the same numbers, to the gates' rounding and the operands' rounding boundaries; the
    int8 kernels of avx2 and AVX-512 VNNI sum the same integers exactly, so they agree bit for
    bit."""
    sets = _core.supported_isas()
    assert len(sets) >= 2, f"an x86-64 CPU with AVX2 runs avx2 and baseline at least: {sets}"
    code = ("import numpy as np, eigengru, sys\n"
            "g = eigengru.GRU(9, 40, num_layers=2, reset_after=False, seed=2)\n"
            "x = np.random.default_rng(1).standard_normal((20, 3, 9)).astype(np.float32)\n"
            "for p in ('bfloat16', 'int8'):\n"
            "    q = g.quantize(p)\n"
            "    np.save(sys.argv[1] + p + '_' + q.kernel + '.npy', q(x)[0])\n")
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for isa in sets:
            env = dict(os.environ, EIGENGRU_ISA=isa)
            done = subprocess.run([sys.executable, "-c", code, f"{d}/{isa}_"], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
        files = sorted(os.listdir(d))
        flags = cpu_flags()
        for index, p in enumerate(("int8", "bfloat16")):
            ran = {isa: next(f for f in files if f.startswith(f"{isa}_{p}_")) for isa in sets}
            for isa in sets:
                assert ran[isa] == f"{isa}_{p}_{expected_kernels(isa, flags)[index]}.npy", ran
            first = np.load(f"{d}/{ran[sets[0]]}")
            for isa in sets[1:]:
                np.testing.assert_allclose(np.load(f"{d}/{ran[isa]}"), first, atol=2e-3,
                                           err_msg=f"{p}: {isa} against {sets[0]}")
            if p == "int8" and ran.get("avx512", "").endswith("_avx512-vnni.npy"):
                assert np.array_equal(np.load(f"{d}/{ran['avx512']}"),
                                      np.load(f"{d}/{ran['avx2']}"))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_files_and_pickles_keep_the_model(precision, tmp_path):
    gru = eigengru.GRU(5, 12, num_layers=2, bidirectional=True, reset_after=False,
                       batch_first=True, gate_activation="hard_sigmoid", clip=3.0, seed=9)
    q = gru.quantize(precision)
    x = np.random.default_rng(3).standard_normal((2, 6, 5)).astype(np.float32)
    want = q(x)
    path = tmp_path / "model.egru"
    q.save(path)
    assert path.read_bytes()[8:12] == (2).to_bytes(4, "little")  # format version 2
    for back in (eigengru.QuantizedGRU.load(path), pickle.loads(pickle.dumps(q))):
        assert back.config() == q.config() and back.precision == precision
        got = back(x)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        for a, b in zip(back.quantized_arrays(), q.quantized_arrays()):
            for name in a:
                assert (a[name] is None and b[name] is None) or np.array_equal(a[name], b[name])
    assert repr(q).startswith("QuantizedGRU(5, 12, num_layers=2") and precision in repr(q)
    with pytest.raises(ValueError, match=r"a quantized model; read it with eigengru\.QuantizedGRU"):
        eigengru.GRU.load(path)


def test_loading_refuses_float_and_damaged_files(tmp_path):
    float_path = tmp_path / "float.egru"
    eigengru.GRU(3, 4, seed=0).save(float_path)
    with pytest.raises(ValueError, match="a float model, not a quantized one"):
        eigengru.QuantizedGRU.load(float_path)
    path = tmp_path / "q.egru"
    eigengru.GRU(3, 4, seed=0).quantize("int8").save(path)
    data = bytearray(path.read_bytes())
    data[60] ^= 1
    (tmp_path / "damaged.egru").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        eigengru.QuantizedGRU.load(tmp_path / "damaged.egru")
    (tmp_path / "short.egru").write_bytes(bytes(data[:40]))
    with pytest.raises(ValueError, match="truncated"):
        eigengru.QuantizedGRU.load(tmp_path / "short.egru")


def test_refusals_name_the_problem():
    gru = eigengru.GRU(3, 4, seed=0)
    with pytest.raises(ValueError, match="precision: expected one of"):
        gru.quantize("float16")
    q = gru.quantize("int8")
    x = np.ones((2, 1, 3), np.float32)
    with pytest.raises(RuntimeError, match="inference only"):
        q.forward(x, train=True)
    with pytest.raises(RuntimeError, match="inference only"):
        q.backward(x)
    with pytest.raises(AttributeError, match="cannot be set"):
        q.hidden_size = 5
    with pytest.raises(TypeError, match=r"GRU\.quantize"):
        eigengru.QuantizedGRU(3, 4)
    with pytest.raises(ValueError, match="x: expected shape"):
        q(np.ones((2, 1, 4), np.float32))
    with pytest.raises(ValueError, match="h0: expected shape"):
        q(x, np.zeros((2, 1, 4), np.float32))
    with pytest.raises(ValueError, match="lengths: each must be in"):
        q(x, lengths=[3])
    with pytest.raises(ValueError, match="bidirectional GRU cannot run step by step"):
        eigengru.GRU(3, 4, bidirectional=True).quantize("bfloat16").stream()
    wide = eigengru.GRU(70000, 4, seed=0)
    with pytest.raises(ValueError, match="int8 takes at most 65535 columns"):
        wide.quantize("int8")
    assert wide.quantize("bfloat16").input_size == 70000
    gru.weight_hh_l0[0, 0] = np.nan
    with pytest.raises(ValueError, match="weight_hh_l0 has values that are not finite"):
        gru.quantize("bfloat16")


def test_a_float64_model_is_quantized_from_its_values():
    gru64 = eigengru.GRU(4, 10, dtype=np.float64, seed=2)
    gru32 = eigengru.GRU(4, 10, seed=2)
    gru32.load_state_dict(gru64.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    assert np.array_equal(gru64.quantize("int8")(x)[0], gru32.quantize("int8")(x)[0])
    assert gru64.quantize("int8")(x)[0].dtype == np.float32


def test_dequantized_is_the_float_model_of_the_stored_weights():
    gru = eigengru.GRU(4, 10, seed=2)
    q = gru.quantize("bfloat16")
    d = q.dequantized()
    assert isinstance(d, eigengru.GRU) and d.config() == gru.config()
    for name, value in d.state_dict().items():
        np.testing.assert_array_equal(value, q.state_dict()[name])
        assert name.startswith("bias") or not np.array_equal(value, gru.state_dict()[name])
