"""A wheel's smoke test: eigengru as installed, with numpy alone, against a few lines of NumPy.

Run in a fresh environment that has the wheel and numpy (scripts/check_wheel, cibuildwheel's
test-command). It checks the build's kernel sets, then runs a training step of a random
two-layer GRU under each kernel set that this CPU runs, each in its own process (the set is
chosen once per process), and compares the outputs and a gradient with a NumPy GRU written here.

    python scripts/wheel_smoke.py                 one line per kernel set; exit 0 when all agree
    python scripts/wheel_smoke.py --one [SET]     the check for the set in use only (the child),
                                                  which must be SET when given
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np


def numpy_gru(x, params, hidden, layers):
    """torch.nn.GRU's forward (reset after the product), float64, batch-second."""
    h_all = []
    inputs = x
    for layer in range(layers):
        w_ih, w_hh, b_ih, b_hh = (params[f"{k}_l{layer}"]
                                  for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        h = np.zeros((x.shape[1], hidden))
        outs = []
        for x_t in inputs:
            gi = x_t @ w_ih.T + b_ih
            gh = h @ w_hh.T + b_hh
            r = 1 / (1 + np.exp(-(gi[:, :hidden] + gh[:, :hidden])))
            z = 1 / (1 + np.exp(-(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])))
            n = np.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
            h = (1 - z) * n + z * h
            outs.append(h)
        inputs = np.stack(outs)
        h_all.append(h)
    return inputs, np.stack(h_all)


def check_set_in_use(expected: str | None) -> str:
    import eigengru

    info = eigengru.build_info()
    wanted = os.environ.get("EIGENGRU_ISA", "auto")
    assert wanted == "auto" or info["isa"] == wanted, (wanted, info["isa"])
    assert expected is None or info["isa"] == expected, (expected, info["isa"])
    rng = np.random.default_rng(1)
    T, B, I, H, L = 12, 3, 5, 24, 2
    model = eigengru.GRU(I, H, num_layers=L, seed=2)
    params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    out, h_n = model.forward(x, train=True)
    expected_out, expected_h = numpy_gru(x.astype(np.float64), params, H, L)
    np.testing.assert_allclose(out, expected_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, expected_h, rtol=1e-4, atol=1e-5)
    # d(sum(out))/d(x) by the library's backward against a central difference of the reference.
    dx, _ = model.backward(np.ones_like(out))
    k = (4, 1, 2)
    step = 1e-4
    plus, minus = x.astype(np.float64).copy(), x.astype(np.float64).copy()
    plus[k] += step
    minus[k] -= step
    numeric = (numpy_gru(plus, params, H, L)[0].sum() - numpy_gru(minus, params, H, L)[0].sum())
    numeric /= 2 * step
    assert abs(dx[k] - numeric) < 1e-3 * max(1.0, abs(numeric)), (dx[k], numeric)
    return f"{info['isa']}: forward and backward agree with NumPy (SIMD: {info['simd']})"


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        print(check_set_in_use(sys.argv[2] if len(sys.argv) > 2 else None))
        return 0
    import eigengru
    from eigengru import _core

    info = eigengru.build_info()
    print(f"eigengru {info['version']}, kernel sets compiled: {', '.join(info['isas'])}; "
          f"this CPU runs: {', '.join(_core.supported_isas())}; chosen: {info['isa']}")
    failed = False
    for isa in ["auto", *_core.supported_isas()]:
        env = dict(os.environ, EIGENGRU_ISA=isa)
        done = subprocess.run([sys.executable, __file__, "--one"], env=env, text=True,
                              capture_output=True, check=False)
        print(f"  EIGENGRU_ISA={isa}: " + (done.stdout.strip() or done.stderr.strip()))
        failed |= done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
