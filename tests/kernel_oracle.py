"""numpy oracles for the kernel ABI (docs/compiled-runtime.md), on unpacked weights, in float64.

Each function takes what the kernel reads (as numpy arrays, weights unpacked) and returns what it
must write. The kernel tests of both kernel sets compare against these.
"""

from __future__ import annotations

import math

import numpy as np

from jsengine_ml.compiled import abi

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, 0.0)


def unary(x: np.ndarray, kind: str, a: float = 0.0, b: float = 0.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "linear":
            return x.copy()
        if kind == "relu":
            return np.maximum(x, 0.0)
        if kind == "relu6":
            return np.minimum(np.maximum(x, 0.0), 6.0)
        if kind == "elu":
            return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
        if kind == "selu":
            return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
        if kind == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if kind == "hard_sigmoid":
            return np.clip(0.2 * x + 0.5, 0.0, 1.0)
        if kind == "hard_sigmoid_k3":
            return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
        if kind == "tanh":
            return np.tanh(x)
        if kind == "softplus":
            return _softplus(x)
        if kind == "softsign":
            return x / (1.0 + np.abs(x))
        if kind == "swish":
            return x / (1.0 + np.exp(-x))
        if kind == "gelu":
            return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
        if kind == "gelu_tanh":
            return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
        if kind == "mish":
            return x * np.tanh(_softplus(x))
        if kind == "leaky_relu":
            return np.where(x >= 0, x, a * x)
        if kind == "relu_clip":
            return np.minimum(np.where(x >= 0, x, a * x), b)
        if kind == "scale":
            return a * x + b
        if kind == "thresholded_relu":
            return np.where(x > a, x, 0.0)
    raise KeyError(kind)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, lo: float, hi: float) -> np.ndarray:
    y = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)
    if bias is not None:
        y = y + bias
    return np.minimum(np.maximum(y, lo), hi)


def _windows(x: np.ndarray, k_h: int, k_w: int, stride: tuple[int, int], dil: tuple[int, int],
             pad: tuple[int, int], out: tuple[int, int], fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(patches[b, oy, ox, ky, kx, c], in-bounds mask[oy, ox, ky, kx]) with out-of-bounds = fill."""
    batch, in_h, in_w, c = x.shape
    out_h, out_w = out
    oy = np.arange(out_h)[:, None, None, None] * stride[0] - pad[0] + np.arange(k_h)[None, None, :, None] * dil[0]
    ox = np.arange(out_w)[None, :, None, None] * stride[1] - pad[1] + np.arange(k_w)[None, None, None, :] * dil[1]
    oy, ox = np.broadcast_arrays(oy, ox)
    inside = (oy >= 0) & (oy < in_h) & (ox >= 0) & (ox < in_w)
    patches = np.full((batch, out_h, out_w, k_h, k_w, c), fill, dtype=np.float64)
    patches[:, inside] = np.asarray(x, np.float64)[:, oy[inside], ox[inside], :]
    return patches, inside


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, stride: tuple[int, int],
           dil: tuple[int, int], pad: tuple[int, int], out: tuple[int, int], lo: float, hi: float) -> np.ndarray:
    """x [b, h, w, c], kernel [k_h, k_w, c, f] -> [b, out_h, out_w, f]."""
    k_h, k_w = kernel.shape[:2]
    patches, _ = _windows(x, k_h, k_w, stride, dil, pad, out, 0.0)
    y = np.einsum("byxhwc,hwcf->byxf", patches, np.asarray(kernel, np.float64))
    if bias is not None:
        y = y + bias
    return np.minimum(np.maximum(y, lo), hi)


def depthwise2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, stride: tuple[int, int],
                dil: tuple[int, int], pad: tuple[int, int], out: tuple[int, int], lo: float,
                hi: float) -> np.ndarray:
    """x [b, h, w, c], kernel [k_h, k_w, c, mult] -> [b, out_h, out_w, c*mult]."""
    k_h, k_w, c, mult = kernel.shape
    patches, _ = _windows(x, k_h, k_w, stride, dil, pad, out, 0.0)
    y = np.einsum("byxhwc,hwcm->byxcm", patches, np.asarray(kernel, np.float64)).reshape(*patches.shape[:3], c * mult)
    if bias is not None:
        y = y + bias
    return np.minimum(np.maximum(y, lo), hi)


def pool2d(x: np.ndarray, k: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
           out: tuple[int, int], mode: str) -> np.ndarray:
    if mode == "max":
        patches, inside = _windows(x, k[0], k[1], stride, (1, 1), pad, out, -np.inf)
        return patches.max(axis=(3, 4))  # np.max propagates NaN
    patches, inside = _windows(x, k[0], k[1], stride, (1, 1), pad, out, 0.0)
    count = inside.sum(axis=(2, 3))[None, :, :, None]
    return patches.sum(axis=(3, 4)) / count


def global_pool(x: np.ndarray, mode: str) -> np.ndarray:
    """x [b, s, c] -> [b, c]."""
    x = np.asarray(x, np.float64)
    return x.max(axis=1) if mode == "max" else x.mean(axis=1)


def softmax(x: np.ndarray, log: bool) -> np.ndarray:
    """Along axis 1 of x [outer, axis_len, inner]."""
    x = np.asarray(x, np.float64)
    z = x - x.max(axis=1, keepdims=True)
    if log:
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, x, alpha * x)


def affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x [outer, c, inner]."""
    return np.asarray(x, np.float64) * scale[None, :, None] + shift[None, :, None]


def layernorm(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, eps: float) -> np.ndarray:
    """Each row of x [rows, size]."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y


def binary(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[op](a, b)


def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.asarray(table, np.float64)[np.asarray(ids)]


def rnn(cell: str, x: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray | None,
        recurrent_bias: np.ndarray | None, flags: int, act: str, rec_act: str) -> np.ndarray:
    """Keras-layout weights: kernel [in, G*u], recurrent [u, G*u], biases [G*u] (gate-major columns)."""
    x = np.asarray(x, np.float64)
    batch, steps, _ = x.shape
    units = recurrent.shape[0]
    w, u = np.asarray(kernel, np.float64), np.asarray(recurrent, np.float64)
    b = np.zeros(w.shape[1]) if bias is None else np.asarray(bias, np.float64)
    br = np.zeros(w.shape[1]) if recurrent_bias is None else np.asarray(recurrent_bias, np.float64)
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    order = range(steps - 1, -1, -1) if flags & abi.RNN_GO_BACKWARDS else range(steps)
    outs = []

    def f(v: np.ndarray) -> np.ndarray:
        return unary(v, act)

    def g(v: np.ndarray) -> np.ndarray:
        return unary(v, rec_act)

    def part(m: np.ndarray, i: int) -> np.ndarray:
        return m[..., i * units : (i + 1) * units]

    for t in order:
        xw = x[:, t, :] @ w + b
        if cell == "simple":
            h = f(xw + h @ u + br)
        elif cell == "lstm":
            z = xw + h @ u + br
            i_, f_, g_, o_ = g(part(z, 0)), g(part(z, 1)), f(part(z, 2)), g(part(z, 3))
            c = f_ * c + i_ * g_
            h = o_ * f(c)
        else:
            if flags & abi.RNN_RESET_AFTER:
                hu = h @ u + br
                z_ = g(part(xw, 0) + part(hu, 0))
                r_ = g(part(xw, 1) + part(hu, 1))
                hh = f(part(xw, 2) + r_ * part(hu, 2))
            else:
                z_ = g(part(xw, 0) + h @ part(u, 0))
                r_ = g(part(xw, 1) + h @ part(u, 1))
                hh = f(part(xw, 2) + (r_ * h) @ part(u, 2))
            h = z_ * h + (1.0 - z_) * hh
        outs.append(h)
    return np.stack(outs, axis=1) if flags & abi.RNN_RETURN_SEQUENCES else h


def pack_rnn(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray | None,
             recurrent_bias: np.ndarray | None, gates: int) -> tuple[np.ndarray, np.ndarray]:
    """``wk`` and ``wr`` of the ``rnn`` kernel from Keras-layout weights."""
    units = recurrent.shape[0]
    wk, wr = [], []
    for i in range(gates):
        cols = slice(i * units, (i + 1) * units)
        wk.append(abi.pack_dense(kernel[:, cols], None if bias is None else bias[cols]))
        wr.append(abi.pack_dense(recurrent[:, cols], None if recurrent_bias is None else recurrent_bias[cols]))
    return np.concatenate(wk), np.concatenate(wr)
