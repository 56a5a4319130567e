"""The kernel sets: which one runs, how EIGENGRU_ISA chooses, and that every set this CPU runs
computes the same GRU (scripts/test also reruns the core numerical tests under each)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eigengru
from eigengru import _core

from . import reference

X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags() -> set[str]:
    """The CPU's features as Linux reports them: an oracle independent of the library's CPUID."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError("/proc/cpuinfo has no flags line")


def expected_automatic_set() -> str:
    flags = cpu_flags()
    v3 = {"avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe"}
    v4 = v3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    return "avx512" if v4 <= flags else "avx2" if v3 <= flags else "baseline"


def run_python(code: str, isa: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EIGENGRU_ISA"}
    if isa is not None:
        env["EIGENGRU_ISA"] = isa
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_set_in_use_is_the_one_asked_for_or_the_best_this_cpu_runs():
    info = eigengru.build_info()
    requested = os.environ.get("EIGENGRU_ISA", "")
    if requested not in ("", "auto"):
        assert info["isa"] == requested
    elif X86_64 and sys.platform == "linux":
        assert info["isa"] == expected_automatic_set(), cpu_flags()
    assert info["isa"] in info["isas"]
    if X86_64 and sys.platform == "linux":
        assert _core.supported_isas()[0] == expected_automatic_set()


def test_an_x86_64_build_has_all_three_sets():
    if not X86_64:
        pytest.skip("the avx512 and avx2 sets are compiled on x86-64 only")
    assert eigengru.build_info()["isas"] == ["avx512", "avx2", "baseline"]
    assert set(_core.supported_isas()) <= {"avx512", "avx2", "baseline"}
    assert "baseline" in _core.supported_isas()


@pytest.mark.parametrize("isa", ["sse9", "AVX2", "native"])
def test_an_unknown_set_fails_the_import_naming_the_variable(isa):
    done = run_python("import eigengru", isa)
    assert done.returncode != 0
    assert f"EIGENGRU_ISA={isa}: expected auto or a kernel set compiled into this build" in (
        done.stderr), done.stderr
    assert "ImportError" in done.stderr


def test_auto_is_the_default():
    done = run_python("import eigengru; print(eigengru.build_info()['isa'])", "auto")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _core.supported_isas()[0]


def test_every_supported_set_computes_the_reference_gru(tmp_path):
    """Each set, in its own process, on the same random model and inputs: all within float
    tolerance of the NumPy reference (and so of each other)."""
    rng = np.random.default_rng(7)
    T, B, I, H = 9, 5, 6, 40
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    model = eigengru.GRU(I, H, dtype=np.float32, seed=3)
    params = {k: v.copy() for k, v in model.state_dict().items()}
    expected, _, _ = reference.forward(reference.weights_of(params, H), x.astype(np.float64),
                                       np.zeros((B, H)), reset_after=True)
    code = ("import sys, numpy as np, eigengru\n"
            "d = np.load(sys.argv[1])\n"
            f"m = eigengru.GRU({I}, {H}, dtype=np.float32)\n"
            "m.load_state_dict({k: d[k] for k in d.files if k != 'x'})\n"
            "out, _ = m(d['x'])\n"
            "np.save(sys.argv[2], out)\n"
            "print(eigengru.build_info()['isa'])\n")
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=x, **params)
    for isa in _core.supported_isas():
        output = tmp_path / f"{isa}.npy"
        done = run_python(code, isa, str(inputs), str(output))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == isa
        np.testing.assert_allclose(np.load(output), expected, rtol=1e-4, atol=1e-5,
                                   err_msg=isa)


def test_info_prints_the_kernel_set(capsys):
    from eigengru import cli

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    info = eigengru.build_info()
    line = next(line for line in out.splitlines() if line.startswith("kernel set"))
    assert line.split(None, 2)[2].startswith(f"{info['isa']} (compiled: {', '.join(info['isas'])}")


#: Instruction sets each kernel set must name as compiled for, and ones it must not.
NAMED = {"avx512": ({"AVX512F", "AVX512BW", "AVX512VL", "AVX2", "FMA"}, set()),
         "avx2": ({"AVX2", "FMA", "AVX"}, {"AVX512F"}),
         "baseline": ({"SSE2"}, {"AVX", "AVX2", "FMA"})}


def test_each_set_names_the_instruction_sets_it_is_compiled_for():
    if not X86_64:
        pytest.skip("the x86-64 sets' instruction sets")
    for isa in (s for s in _core.supported_isas() if s in NAMED):  # not a native build's
        done = run_python("import eigengru; print(eigengru.build_info()['simd'])", isa)
        assert done.returncode == 0, done.stderr
        named = set(done.stdout.strip().split(", "))
        required, absent = NAMED[isa]
        assert required <= named and not absent & named, (isa, named)
