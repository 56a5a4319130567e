"""A plain NumPy GRU, forward and hand-written backward, written for clarity, not speed.

It shares nothing with the library but the conventions: PyTorch's gate order (r, z, n) and
weight layout, W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _activation(spec):
    """(f, f') of an activation given as eigengru takes it: a name or ('hard_sigmoid', a, b)."""
    name, *params = (spec,) if isinstance(spec, str) else spec
    if name == "sigmoid":
        return sigmoid, lambda a: sigmoid(a) * (1 - sigmoid(a))
    if name == "tanh":
        return np.tanh, lambda a: 1 - np.tanh(a) ** 2
    if name == "relu":
        return (lambda a: np.maximum(a, 0)), (lambda a: (a > 0).astype(float))
    if name == "hard_sigmoid":
        alpha, beta = params or (0.2, 0.5)
        return ((lambda a: np.clip(alpha * a + beta, 0, 1)),
                (lambda a: alpha * ((alpha * a + beta > 0) & (alpha * a + beta < 1))))
    raise ValueError(name)


class Functions:
    """The gate function f (r, z) and candidate function g (n) with their derivatives at the
    pre-activation, each after ONNX's clip when one is given."""

    def __init__(self, gate="sigmoid", candidate="tanh", clip=None):
        self._f, self._df = _activation(gate)
        self._g, self._dg = _activation(candidate)
        self.clip = clip

    def _clamped(self, a):
        return a if self.clip is None else np.clip(a, -self.clip, self.clip)

    def _inside(self, a):
        return 1.0 if self.clip is None else (np.abs(a) < self.clip).astype(float)

    def f(self, a):
        return self._f(self._clamped(a))

    def df(self, a):
        return self._df(self._clamped(a)) * self._inside(a)

    def g(self, a):
        return self._g(self._clamped(a))

    def dg(self, a):
        return self._dg(self._clamped(a)) * self._inside(a)


STANDARD = Functions()


@dataclass
class Weights:
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    def gates(self, name):
        """(W_i*, W_h*, b_i*, b_h*) of gate r, z or n."""
        k = "rzn".index(name)
        hidden = self.w_hh.shape[1]
        rows = slice(k * hidden, (k + 1) * hidden)
        return self.w_ih[rows], self.w_hh[rows], self.b_ih[rows], self.b_hh[rows]


def weights_of(params, hidden_size):
    """Reference weights from a dict of PyTorch-named arrays (biases default to zero)."""
    zeros = np.zeros(3 * hidden_size)
    return Weights(
        params["weight_ih_l0"].astype(np.float64),
        params["weight_hh_l0"].astype(np.float64),
        params.get("bias_ih_l0", zeros).astype(np.float64),
        params.get("bias_hh_l0", zeros).astype(np.float64),
    )


def forward(w: Weights, x, h0, reset_after, functions=STANDARD, input_mask=None,
            recurrent_mask=None, operand=None):
    """Returns out (T, B, H), h_n (B, H) and the per-step values backward needs. The masks
    (per-sequence dropout, (B, I) and (B, H)) multiply every step's input, and the state where
    the recurrent products read it. operand(a): what a product reads of its left factor a
    (B, K), e.g. a quantized copy (None: a itself)."""
    fn = functions
    q = (lambda a: a) if operand is None else operand
    x = x if input_mask is None else x * input_mask
    mask = 1.0 if recurrent_mask is None else recurrent_mask
    W_ir, W_hr, b_ir, b_hr = w.gates("r")
    W_iz, W_hz, b_iz, b_hz = w.gates("z")
    W_in, W_hn, b_in, b_hn = w.gates("n")
    h = h0
    outs, saved = [], []
    for x_t in x:
        hm = h * mask
        xq, hq = q(x_t), q(hm)
        a_r = xq @ W_ir.T + b_ir + hq @ W_hr.T + b_hr
        a_z = xq @ W_iz.T + b_iz + hq @ W_hz.T + b_hz
        r, z = fn.f(a_r), fn.f(a_z)
        if reset_after:
            m = hq @ W_hn.T + b_hn
            a_n = xq @ W_in.T + b_in + r * m
        else:
            m = r * hm
            a_n = xq @ W_in.T + b_in + q(m) @ W_hn.T + b_hn
        n = fn.g(a_n)
        saved.append((x_t, h, r, z, n, m, (a_r, a_z, a_n), hm))
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h, saved


def backward(w: Weights, saved, grad_out, grad_h_n, reset_after, functions=STANDARD,
             input_mask=None, recurrent_mask=None):
    """Gradients of sum(out * grad_out) + sum(h_n * grad_h_n): dx, dh0 and a dict of weight
    grads, for the forward that ran with these masks."""
    mask = 1.0 if recurrent_mask is None else recurrent_mask
    H = w.w_hh.shape[1]
    W_ir, W_hr, _, _ = w.gates("r")
    W_iz, W_hz, _, _ = w.gates("z")
    W_in, W_hn, _, _ = w.gates("n")
    g = {name: np.zeros_like(getattr(w, name)) for name in ("w_ih", "w_hh", "b_ih", "b_hh")}
    dx = []
    dh = grad_h_n.copy()
    for t in reversed(range(len(saved))):
        x_t, h, r, z, n, m, (a_r, a_z, a_n), hm = saved[t]
        dhm = np.zeros_like(h)  # dL/d(h * mask)
        dh = dh + grad_out[t]
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dh_prev = dh * z
        da_n = dn * functions.dg(a_n)
        da_z = dz * functions.df(a_z)
        if reset_after:
            dm = da_n * r  # m = W_hn hm + b_hn
            dr = da_n * m
            dhm += dm @ W_hn
            g["w_hh"][2 * H :] += dm.T @ hm
            g["b_hh"][2 * H :] += dm.sum(0)
        else:
            dm = da_n @ W_hn  # m = r * hm
            dr = dm * hm
            dhm += dm * r
            g["w_hh"][2 * H :] += da_n.T @ m
            g["b_hh"][2 * H :] += da_n.sum(0)
        da_r = dr * functions.df(a_r)
        dhm += da_r @ W_hr + da_z @ W_hz
        dh_prev += dhm * mask
        g["w_hh"][:H] += da_r.T @ hm
        g["w_hh"][H : 2 * H] += da_z.T @ hm
        g["b_hh"][: 2 * H] += np.concatenate([da_r.sum(0), da_z.sum(0)])
        da_x = np.concatenate([da_r, da_z, da_n], axis=1)
        g["w_ih"] += da_x.T @ x_t
        g["b_ih"] += da_x.sum(0)
        dx.append(da_x @ np.concatenate([W_ir, W_iz, W_in]))
        dh = dh_prev
    dx = np.stack(dx[::-1])
    return (dx if input_mask is None else dx * input_mask), dh, g


def stack(params, num_layers, bidirectional, reset_after, x, h0, lengths, grad_out, grad_h_n,
          functions=STANDARD, masks=None):
    """A whole torch.nn.GRU-style stack, one batch row at a time, built from the single-layer
    reference: each row runs over its own first lengths[b] steps (reversed for the reverse
    direction), outputs past a row's length are zero.

    x (T, B, I), h0 (L*D, B, H), grad_out (T, B, D*H), grad_h_n (L*D, B, H), float64.
    masks: per layer-direction k, (input mask (B, in) or None, recurrent mask (B, H) or None).
    Returns out, h_n, dx, dh0 and the parameter gradients by PyTorch name.
    """

    def row_masks(k, b):
        if masks is None:
            return None, None
        return tuple(None if m is None else m[b : b + 1] for m in masks[k])
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    zeros = np.zeros(3 * H)
    suffixes = ("", "_reverse")[:D]

    def weights(layer, suffix):
        def get(kind):
            return params.get(f"{kind}_l{layer}{suffix}", zeros).astype(np.float64)
        return Weights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))

    saved, inputs = {}, [x]
    h_n = np.zeros((num_layers * D, B, H))
    for layer in range(num_layers):
        out = np.zeros((T, B, D * H))
        for d, suffix in enumerate(suffixes):
            k = layer * D + d
            for b in range(B):
                n = lengths[b]
                seq = inputs[layer][:n, b : b + 1]
                seq = seq[::-1] if d else seq
                o, h, s = forward(weights(layer, suffix), seq, h0[k, b : b + 1], reset_after,
                                  functions, *row_masks(k, b))
                out[:n, b, d * H : (d + 1) * H] = (o[::-1] if d else o)[:, 0]
                h_n[k, b] = h[0]
                saved[k, b] = s
        inputs.append(out)

    grads = {name: np.zeros(p.shape) for name, p in params.items()}
    dh0 = np.zeros_like(h0)
    grad_above = grad_out
    for layer in reversed(range(num_layers)):
        d_in = np.zeros_like(inputs[layer])
        for d, suffix in enumerate(suffixes):
            k = layer * D + d
            for b in range(B):
                n = lengths[b]
                g = grad_above[:n, b : b + 1, d * H : (d + 1) * H]
                g = g[::-1] if d else g
                dx, dh, gw = backward(weights(layer, suffix), saved[k, b], g,
                                      grad_h_n[k, b : b + 1], reset_after, functions,
                                      *row_masks(k, b))
                d_in[:n, b] += (dx[::-1] if d else dx)[:, 0]
                dh0[k, b] = dh[0]
                for short, kind in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"),
                                    ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
                    name = f"{kind}_l{layer}{suffix}"
                    if name in grads:
                        grads[name] += gw[short]
        grad_above = d_in
    return inputs[-1], h_n, grad_above, dh0, grads


def bfloat16(a):
    """a rounded to bfloat16 (to nearest, ties to even), as float64."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def quantized_operand(precision):
    """What a quantized product reads of its left factor, row by row, in float32 arithmetic as
    documented: bfloat16, or int8 with scale max|a| / 127 (rounded to nearest, ties to even)."""
    def operand(a):
        a = np.asarray(a, np.float32)
        if precision == "bfloat16":
            return bfloat16(a)
        largest = np.abs(a).max(axis=-1, keepdims=True)
        safe = np.where(largest > 0, largest, np.float32(1))
        q = np.rint(a * (np.float32(127) / safe))
        return q.astype(np.float64) * (safe / np.float32(127)).astype(np.float64)
    return operand


def forward_stack(params, num_layers, bidirectional, reset_after, x, h0, lengths,
                  functions=STANDARD, operand=None, reverse=False):
    """The forward of a whole stack, one batch row at a time: out (T, B, D*H), h_n (L*D, B, H).
    reverse: a unidirectional stack run backwards in time (ONNX's "reverse")."""
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    zeros = np.zeros(3 * H)
    h_n = np.zeros((num_layers * D, B, H))
    inputs = x.astype(np.float64)
    for layer in range(num_layers):
        out = np.zeros((T, B, D * H))
        for d, suffix in enumerate(("", "_reverse")[:D]):
            k = layer * D + d
            w = Weights(*(params.get(f"{kind}_l{layer}{suffix}", zeros).astype(np.float64)
                          for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
            backwards = bool(d) or reverse
            for b in range(B):
                n = lengths[b]
                seq = inputs[:n, b : b + 1]
                seq = seq[::-1] if backwards else seq
                o, h, _ = forward(w, seq, h0[k, b : b + 1].astype(np.float64), reset_after,
                                  functions, operand=operand)
                out[:n, b, d * H : (d + 1) * H] = (o[::-1] if backwards else o)[:, 0]
                h_n[k, b] = h[0]
        inputs = out
    return inputs, h_n
