"""Reference forward pass of Keras layers in plain numpy.

This is the project's one numpy implementation of the Keras layers that TF.js Layers models use.
Compiled JS/WebAssembly kernels are tested against it, and the benchmark runs it as the "numpy"
contender.

Conventions:

* Arrays are batch first and channels last (``channels_last``), as Keras and TF.js use them.
* Every function computes in the dtype of its float inputs: float32 in, float32 math and output
  (fast, for the benchmark); float64 in, float64 math (for tests). Mixed float inputs promote as
  numpy does; non-float inputs are treated as float32 (Keras' ``floatx``).
* Semantics are those of Keras 3 with the jax backend, NaN and inf included, unless a parameter
  says otherwise. Where Keras 2 / TF.js differ, the docstring says so (and a ``keras_major``
  parameter selects the old behaviour where it matters for exported models).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from .errors import InputError

__all__ = [
    "ACTIVATIONS",
    "activation",
    "add",
    "apply_layer",
    "average",
    "batch_norm",
    "bidirectional",
    "concatenate",
    "conv",
    "dense",
    "depthwise_conv",
    "elu",
    "embedding",
    "erfc",
    "flatten",
    "forward",
    "gelu",
    "global_pool",
    "gru",
    "hard_sigmoid",
    "hard_silu",
    "layer_norm",
    "leaky_relu",
    "log_softmax",
    "lstm",
    "maximum",
    "minimum",
    "mish",
    "multiply",
    "permute",
    "pool",
    "prelu",
    "relu",
    "repeat_vector",
    "reshape",
    "selu",
    "separable_conv",
    "sigmoid",
    "silu",
    "simple_rnn",
    "softmax",
    "softplus",
    "softsign",
    "subtract",
    "thresholded_relu",
    "time_distributed",
]

Array: TypeAlias = npt.NDArray[Any]
"""A numpy array (float unless stated otherwise)."""

ActivationLike: TypeAlias = "str | Callable[[Array], Array] | None"
"""An activation name (see :data:`ACTIVATIONS`), a callable on arrays, or None for linear."""

IntOrSeq: TypeAlias = "int | Sequence[int]"
Padding: TypeAlias = Literal["valid", "same", "causal"]
MergeMode: TypeAlias = Literal["concat", "sum", "mul", "ave"] | None

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_ONE_OVER_SQRT_PI = 1.0 / math.sqrt(math.pi)


# --------------------------------------------------------------------------------------------
# dtype handling
# --------------------------------------------------------------------------------------------


def _float_dtype(*arrays: Any) -> np.dtype[Any]:
    """The float dtype the computation runs in: numpy promotion of the float inputs, else float32."""
    dtypes = [np.asarray(a).dtype for a in arrays if a is not None]
    floats = [d for d in dtypes if np.issubdtype(d, np.floating)]
    if not floats:
        return np.dtype(np.float32)
    return np.dtype(np.result_type(*floats))


def _as(a: Any, dtype: np.dtype[Any]) -> Array:
    return np.asarray(a, dtype=dtype)


def _arr(value: Any) -> Array:
    """``value`` as an ndarray (no copy); also gives numpy results a static array type."""
    return np.asarray(value)


def _tuple(value: IntOrSeq, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    out = tuple(int(v) for v in value)
    if len(out) != n:
        raise InputError(f"{name} must have {n} values, got {value!r}")
    return out


def _norm_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise InputError(f"axis {axis} out of range for rank {ndim}")
    return axis % ndim


# --------------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------------


def _series_coefficients(n: int) -> list[float]:
    """``1 / (2k+1)!!`` for k < n: the terms of ``erf(a) = 2/sqrt(pi) a exp(-a^2) sum c_k (2a^2)^k``."""
    coefs = [1.0]
    for k in range(1, n):
        coefs.append(coefs[-1] / (2 * k + 1))
    return coefs


# (series terms, continued-fraction depth) for a float64 and a float32 result, with the series
# used below |x| = 2 and the continued fraction above (errors measured against math.erfc).
_ERFC_TERMS = {64: (32, 48), 32: (22, 22)}
_ERFC_SERIES = {bits: _series_coefficients(n) for bits, (n, _) in _ERFC_TERMS.items()}


def erfc(x: Array) -> Array:
    """Complementary error function, elementwise, returned in the dtype of ``x``.

    numpy has no erf; this sums the positive-term series
    ``erf(a) = 2/sqrt(pi) * a * exp(-a^2) * sum_k (2a^2)^k / (2k+1)!!`` for ``|a| < 2`` and the
    Laplace continued fraction of ``erfc`` for ``|a| >= 2``, in float64 (fewer terms when the
    result is float32). Relative error below 1e-13 in float64 (against ``math.erfc``); float32
    results are rounded from float64.
    """
    x = np.asarray(x)
    dtype = _float_dtype(x)
    bits = 64 if np.finfo(dtype).bits >= 64 else 32
    n_cf = _ERFC_TERMS[bits][1]
    coefs = _ERFC_SERIES[bits]
    x64 = np.asarray(x, dtype=np.float64)
    a = np.abs(x64).ravel()
    out = np.full(a.shape, np.nan)
    small = a < 2.0
    if small.any():
        s_a = a[small]
        t = 2.0 * s_a * s_a
        acc = np.full_like(s_a, coefs[-1])
        for c in reversed(coefs[:-1]):
            acc *= t
            acc += c
        out[small] = 1.0 - _TWO_OVER_SQRT_PI * s_a * np.exp(-s_a * s_a) * acc
    large = a >= 2.0
    if large.any():
        l_a = a[large]
        frac = l_a.copy()
        with np.errstate(invalid="ignore"):
            for k in range(n_cf, 0, -1):
                frac = l_a + (0.5 * k) / frac
            out[large] = _ONE_OVER_SQRT_PI * np.exp(-l_a * l_a) / frac
    out = out.reshape(x64.shape)
    return np.where(x64 < 0, 2.0 - out, out).astype(dtype)


def relu(
    x: Array,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
    *,
    keras_major: int = 3,
) -> Array:
    """ReLU activation / ``ReLU`` layer, exactly as ``keras.activations.relu``.

    With ``negative_slope`` and a ``threshold``, values below the threshold give
    ``negative_slope * (x - threshold)`` (Keras' formula). Keras 3 zeroes ``x <= threshold`` with
    ``where``, so NaN gives 0 when ``threshold != 0``; Keras 2 multiplies by ``x > threshold``, so
    NaN (and -inf) give NaN: select it with ``keras_major=2``. TF.js' ``ReLU`` layer only has
    ``max_value``.
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    neg: Array | None = None
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return leaky_relu(x, negative_slope)
        neg = np.maximum(-x + threshold, 0.0) if threshold != 0 else np.maximum(-x, 0.0)
    clip_max = max_value is not None
    if threshold != 0:
        if keras_major >= 3:
            y = np.where(x > threshold, x, 0.0).astype(x.dtype, copy=False)
        else:
            with np.errstate(invalid="ignore"):
                y = x * (x > threshold).astype(x.dtype)
    elif max_value == 6:
        y = np.minimum(np.maximum(x, 0.0), 6.0)
        clip_max = False
    else:
        y = np.maximum(x, 0.0)
    if clip_max:
        assert max_value is not None
        y = np.clip(y, 0.0, max_value)
    if neg is not None:
        y = y - negative_slope * neg
    return y


def leaky_relu(x: Array, negative_slope: float = 0.2) -> Array:
    """``where(x >= 0, x, negative_slope * x)``.

    The default 0.2 is that of the ``"leaky_relu"`` activation; the ``LeakyReLU`` layer defaults
    to 0.3 (Keras 2, 3 and TF.js ``alpha``).
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x >= 0, x, negative_slope * x).astype(x.dtype, copy=False)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """ELU: ``x`` for ``x > 0``, else ``alpha * expm1(x)`` (activation and ``ELU`` layer).

    TF.js' ELU layer only accepts ``alpha=1``.
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore", over="ignore"):
        neg = alpha * np.expm1(np.where(x > 0, 0.0, x).astype(x.dtype, copy=False))
    return np.where(x > 0, x, neg).astype(x.dtype, copy=False)


def selu(x: Array) -> Array:
    """SELU: ``scale * elu(x, alpha)`` with the fixed constants of Klambauer et al."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))`` (jax' ``lax.logistic``)."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(over="ignore"):
        return _arr(1.0 / (1.0 + np.exp(-x)))


def hard_sigmoid(
    x: Array,
    *,
    keras_major: int = 3,
    slope: float | None = None,
    offset: float | None = None,
) -> Array:
    """Hard sigmoid.

    Keras 3: ``relu6(x + 3) / 6``. Keras 2 and TF.js: ``clip(0.2 * x + 0.5, 0, 1)``
    (``keras_major=2``). Passing ``slope``/``offset`` computes ``clip(slope * x + offset, 0, 1)``.
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    if slope is not None or offset is not None or keras_major < 3:
        s = 0.2 if slope is None else slope
        o = 0.5 if offset is None else offset
        return np.clip(s * x + o, 0.0, 1.0)
    return np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0


def softplus(x: Array) -> Array:
    """Stable ``log(1 + exp(x))`` (``logaddexp(x, 0)``, as jax)."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return np.logaddexp(x, x.dtype.type(0))


def softsign(x: Array) -> Array:
    """``x / (|x| + 1)``; +-inf give NaN (inf / inf), as in Keras."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return _arr(x / (np.abs(x) + 1.0))


def silu(x: Array) -> Array:
    """Swish / SiLU: ``x * sigmoid(x)`` (-inf gives NaN). TF.js' ``swish`` is the same (alpha 1)."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return x * sigmoid(x)


def hard_silu(x: Array) -> Array:
    """Hard SiLU / hard swish (Keras 3 only): ``x * relu6(x + 3) / 6``."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return x * hard_sigmoid(x)


def gelu(x: Array, approximate: bool = False) -> Array:
    """GELU. Exact: ``0.5 * x * erfc(-x / sqrt(2))``; approximate: the tanh formula.

    The ``"gelu"`` activation is exact (``approximate=False``) in Keras 2, 3 and TF.js; TF.js'
    ``"gelu_new"`` is the tanh approximation.
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate:
            c = math.sqrt(2.0 / math.pi)
            cdf = 0.5 * (1.0 + np.tanh(c * (x + 0.044715 * (x**3))))
            return _arr(x * cdf)
        return 0.5 * x * erfc(-x * math.sqrt(0.5))


def mish(x: Array) -> Array:
    """``x * tanh(softplus(x))``."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return _arr(x * np.tanh(softplus(x)))


def softmax(x: Array, axis: int | Sequence[int] = -1) -> Array:
    """Softmax over ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    A NaN or +inf in a slice makes the whole slice NaN, as in Keras. With several axes this is
    the ``Softmax`` layer's ``exp(x - logsumexp(x))`` (jax' logsumexp shifts by the max only when
    it is finite), which differs only for +inf: NaN where the +inf is, 0 elsewhere in the slice.
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if not isinstance(axis, int):
            axes = tuple(axis)
            if len(axes) > 1:
                amax = np.max(x, axis=axes, keepdims=True)
                amax = np.where(np.isfinite(amax), amax, 0.0).astype(x.dtype, copy=False)
                lse = np.log(np.sum(np.exp(x - amax), axis=axes, keepdims=True)) + amax
                return _arr(np.exp(x - lse))
            axis = axes[0]
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return _arr(e / np.sum(e, axis=axis, keepdims=True))


def log_softmax(x: Array, axis: int | Sequence[int] = -1) -> Array:
    """``shifted - log(sum(exp(shifted)))`` with ``shifted = x - max`` over ``axis``."""
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    ax = axis if isinstance(axis, int) else tuple(axis)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shifted = x - np.max(x, axis=ax, keepdims=True)
        return _arr(shifted - np.log(np.sum(np.exp(shifted), axis=ax, keepdims=True)))


def thresholded_relu(x: Array, theta: float = 1.0) -> Array:
    """``ThresholdedReLU`` layer (Keras 2 / TF.js only): ``x * (x > theta)``.

    As in Keras 2 and TF.js, NaN and -inf give NaN (a multiply by 0). Keras 3 removed the layer;
    its replacement ``ReLU(threshold=theta)`` gives 0 for them (see :func:`relu`).
    """
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    with np.errstate(invalid="ignore"):
        return _arr(x * (x > theta).astype(x.dtype))


def prelu(x: Array, alpha: Array) -> Array:
    """``PReLU`` layer: ``relu(x) - alpha * relu(-x)``.

    ``alpha`` is the layer's weight, shaped like ``x.shape[1:]`` with 1 on the ``shared_axes``;
    it broadcasts over the batch.
    """
    x = np.asarray(x)
    dtype = _float_dtype(x, alpha)
    x = _as(x, dtype)
    a = _as(alpha, dtype)
    with np.errstate(invalid="ignore"):
        return _arr(np.maximum(x, 0.0) + (-a * np.maximum(-x, 0.0)))


def _linear(x: Array) -> Array:
    x = np.asarray(x)
    return _as(x, _float_dtype(x)).copy()


def _relu6(x: Array) -> Array:
    x = np.asarray(x)
    x = _as(x, _float_dtype(x))
    return np.minimum(np.maximum(x, 0.0), 6.0)


def _tanh(x: Array) -> Array:
    x = np.asarray(x)
    return np.tanh(_as(x, _float_dtype(x)))


def _exponential(x: Array) -> Array:
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return np.exp(_as(x, _float_dtype(x)))


def _gelu_new(x: Array) -> Array:
    return gelu(x, approximate=True)


ACTIVATIONS: dict[str, Callable[..., Array]] = {
    "linear": _linear,
    "relu": relu,
    "relu6": _relu6,
    "elu": elu,
    "selu": selu,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": _tanh,
    "softplus": softplus,
    "softsign": softsign,
    "swish": silu,
    "silu": silu,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "gelu": gelu,
    "gelu_new": _gelu_new,
    "mish": mish,
    "leaky_relu": leaky_relu,
    "exponential": _exponential,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "thresholded_relu": thresholded_relu,
    "prelu": prelu,
}
"""Activation functions by Keras / TF.js name; extra keyword parameters go to the function."""


def activation(x: Array, name: str | None, **params: Any) -> Array:
    """Apply the activation ``name`` (see :data:`ACTIVATIONS`) with its parameters.

    Examples: ``activation(x, "relu", max_value=6.0)``, ``activation(x, "elu", alpha=0.5)``,
    ``activation(x, "hard_sigmoid", keras_major=2)``, ``activation(x, "gelu", approximate=True)``,
    ``activation(x, "softmax", axis=1)``, ``activation(x, "prelu", alpha=a)``. ``None`` is linear.
    Unknown names or parameters raise.
    """
    key = "linear" if name is None else name
    try:
        fn = ACTIVATIONS[key]
    except KeyError:
        raise InputError(f"unknown activation {name!r}") from None
    return fn(x, **params)


def _apply_activation(x: Array, act: ActivationLike) -> Array:
    if act is None:
        return x
    if isinstance(act, str):
        return activation(x, act)
    return act(x)


# --------------------------------------------------------------------------------------------
# dense, convolutions, pooling
# --------------------------------------------------------------------------------------------


def dense(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    activation: ActivationLike = None,
) -> Array:
    """``Dense``: ``x @ kernel + bias`` over the last axis of ``x`` (any rank)."""
    dtype = _float_dtype(x, kernel, bias)
    y = _as(x, dtype) @ _as(kernel, dtype)
    if bias is not None:
        y = y + _as(bias, dtype)
    return _apply_activation(y, activation)


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) for one spatial dimension."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _pad_and_windows(
    x: Array,
    kernel_size: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: str,
    pad_value: float,
) -> tuple[list[Array], tuple[int, ...]]:
    """Pad ``x`` (batch, *spatial, channels) and return one strided view per kernel offset.

    Each view has shape (batch, *out_spatial, channels); views come in C order of the offsets,
    matching a kernel reshaped to (prod(kernel_size) * channels, ...).
    """
    n = len(kernel_size)
    spatial = x.shape[1 : 1 + n]
    if padding == "valid":
        pads = [(0, 0)] * n
    elif padding == "same":
        pads = [_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel_size, strides, dilation, strict=True)]
    elif padding == "causal":
        if n != 1:
            raise InputError("causal padding is only defined for 1D inputs")
        pads = [((kernel_size[0] - 1) * dilation[0], 0)]
    else:
        raise InputError(f"unknown padding {padding!r}")
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, [(0, 0), *pads, (0, 0)], mode="constant", constant_values=pad_value)
    padded = x.shape[1 : 1 + n]
    out = tuple(
        (p - ((k - 1) * d + 1)) // st + 1 for p, k, st, d in zip(padded, kernel_size, strides, dilation, strict=True)
    )
    if any(o <= 0 for o in out):
        raise InputError(f"empty output: input {spatial}, kernel {kernel_size}, padding {padding!r}")
    views = []
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        index = tuple(
            slice(o * d, o * d + (m - 1) * st + 1, st)
            for o, d, m, st in zip(offset, dilation, out, strides, strict=True)
        )
        window = (slice(None), *index, slice(None))
        views.append(x[window])
    return views, out


def conv(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    dilation_rate: IntOrSeq = 1,
    *,
    activation: ActivationLike = None,
) -> Array:
    """``Conv1D`` / ``Conv2D`` (``Conv3D`` too), channels_last, ``groups=1``.

    ``x``: (batch, *spatial, in); ``kernel``: (*kernel_size, in, filters). ``padding`` is
    ``"valid"``, ``"same"`` (TensorFlow's, extra pad at the end) or ``"causal"`` (1D: left pad of
    ``dilation * (k - 1)``). Keras refuses strides > 1 together with dilation > 1; this computes it.
    """
    dtype = _float_dtype(x, kernel, bias)
    xa = _as(x, dtype)
    k = _as(kernel, dtype)
    n = k.ndim - 2
    if xa.ndim != n + 2 or xa.shape[-1] != k.shape[-2]:
        raise InputError(f"input {xa.shape} does not match kernel {k.shape}")
    ks = k.shape[:n]
    views, out = _pad_and_windows(
        xa, ks, _tuple(strides, n, "strides"), _tuple(dilation_rate, n, "dilation_rate"), padding, 0.0
    )
    patches = np.stack(views, axis=-2).reshape(xa.shape[0], *out, -1)
    y = patches @ k.reshape(-1, k.shape[-1])
    if bias is not None:
        y = y + _as(bias, dtype)
    return _apply_activation(y, activation)


def depthwise_conv(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    dilation_rate: IntOrSeq = 1,
    *,
    activation: ActivationLike = None,
) -> Array:
    """``DepthwiseConv1D`` / ``DepthwiseConv2D``: kernel (*kernel_size, in, depth_multiplier).

    Output channel ``c * depth_multiplier + m`` is input channel ``c`` convolved with
    ``kernel[..., c, m]`` (TensorFlow's order).
    """
    dtype = _float_dtype(x, kernel, bias)
    xa = _as(x, dtype)
    k = _as(kernel, dtype)
    n = k.ndim - 2
    if xa.ndim != n + 2 or xa.shape[-1] != k.shape[-2]:
        raise InputError(f"input {xa.shape} does not match depthwise kernel {k.shape}")
    ks = k.shape[:n]
    views, out = _pad_and_windows(
        xa, ks, _tuple(strides, n, "strides"), _tuple(dilation_rate, n, "dilation_rate"), padding, 0.0
    )
    channels, mult = k.shape[-2], k.shape[-1]
    flat_k = k.reshape(-1, channels, mult)
    acc = np.zeros((xa.shape[0], *out, channels, mult), dtype=dtype)
    for view, w in zip(views, flat_k, strict=True):
        acc += view[..., None] * w
    y = acc.reshape(xa.shape[0], *out, channels * mult)
    if bias is not None:
        y = y + _as(bias, dtype)
    return _apply_activation(y, activation)


def separable_conv(
    x: Array,
    depthwise_kernel: Array,
    pointwise_kernel: Array,
    bias: Array | None = None,
    strides: IntOrSeq = 1,
    padding: Padding = "valid",
    dilation_rate: IntOrSeq = 1,
    *,
    activation: ActivationLike = None,
) -> Array:
    """``SeparableConv1D`` / ``SeparableConv2D``: depthwise conv, then a 1x1 conv, then bias.

    ``pointwise_kernel``: (*ones, in * depth_multiplier, filters).
    """
    dtype = _float_dtype(x, depthwise_kernel, pointwise_kernel, bias)
    y = depthwise_conv(_as(x, dtype), _as(depthwise_kernel, dtype), None, strides, padding, dilation_rate)
    pw = _as(pointwise_kernel, dtype)
    y = y @ pw.reshape(-1, pw.shape[-1])
    if bias is not None:
        y = y + _as(bias, dtype)
    return _apply_activation(y, activation)


def pool(
    x: Array,
    pool_size: IntOrSeq,
    strides: IntOrSeq | None = None,
    padding: Literal["valid", "same"] = "valid",
    mode: Literal["max", "avg"] = "max",
) -> Array:
    """``MaxPooling1D/2D`` and ``AveragePooling1D/2D`` on (batch, *spatial, channels).

    The rank comes from ``x`` (spatial dims = ``x.ndim - 2``); ``strides`` defaults to
    ``pool_size``. "same" average pooling divides by the number of in-bounds elements of each
    window. Max pooling propagates NaN (any NaN in a window gives NaN), as Keras 3 / jax does;
    TF.js' CPU kernel skips NaN instead (``pixel > max`` is false for NaN).
    """
    xa = np.asarray(x)
    xa = _as(xa, _float_dtype(xa))
    n = xa.ndim - 2
    ps = _tuple(pool_size, n, "pool_size")
    st = ps if strides is None else _tuple(strides, n, "strides")
    ones = (1,) * n
    if mode == "max":
        views, _ = _pad_and_windows(xa, ps, st, ones, padding, -np.inf)
        return _arr(np.max(np.stack(views, axis=0), axis=0))
    if mode != "avg":
        raise InputError(f"unknown pooling mode {mode!r}")
    views, _ = _pad_and_windows(xa, ps, st, ones, padding, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.sum(np.stack(views, axis=0), axis=0)
    if padding == "valid":
        return _arr(total / float(math.prod(ps)))
    counts_in = np.ones((1, *xa.shape[1:-1], 1), dtype=xa.dtype)
    count_views, _ = _pad_and_windows(counts_in, ps, st, ones, padding, 0.0)
    counts = np.sum(np.stack(count_views, axis=0), axis=0)
    return _arr(total / counts)


def global_pool(x: Array, mode: Literal["max", "avg"] = "avg", keepdims: bool = False) -> Array:
    """``GlobalAveragePooling1D/2D`` and ``GlobalMaxPooling1D/2D``: reduce all spatial axes."""
    xa = np.asarray(x)
    xa = _as(xa, _float_dtype(xa))
    axes = tuple(range(1, xa.ndim - 1))
    with np.errstate(invalid="ignore", over="ignore"):
        if mode == "avg":
            return _arr(np.mean(xa, axis=axes, keepdims=keepdims))
        if mode == "max":
            return _arr(np.max(xa, axis=axes, keepdims=keepdims))
    raise InputError(f"unknown pooling mode {mode!r}")


# --------------------------------------------------------------------------------------------
# normalization, embedding
# --------------------------------------------------------------------------------------------


def batch_norm(
    x: Array,
    gamma: Array | None,
    beta: Array | None,
    moving_mean: Array,
    moving_variance: Array,
    epsilon: float = 1e-3,
    axis: int = -1,
) -> Array:
    """``BatchNormalization`` at inference, in Keras 3's order of operations.

    ``inv = gamma / sqrt(var + eps)``; ``y = x * inv + (beta - mean * inv)``. ``gamma``/``beta``
    are None when ``scale``/``center`` is False. TF.js computes ``(x - mean) * inv + beta``
    (equal up to rounding).
    """
    dtype = _float_dtype(x, gamma, beta, moving_mean, moving_variance)
    xa = _as(x, dtype)
    shape = [1] * xa.ndim
    shape[_norm_axis(axis, xa.ndim)] = xa.shape[axis]
    mean = _as(moving_mean, dtype).reshape(shape)
    var = _as(moving_variance, dtype).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = 1.0 / np.sqrt(var + epsilon)
    if gamma is not None:
        inv = inv * _as(gamma, dtype).reshape(shape)
    res = -mean * inv
    if beta is not None:
        res = res + _as(beta, dtype).reshape(shape)
    return _arr(xa * inv + res)


def layer_norm(
    x: Array,
    gamma: Array | None,
    beta: Array | None,
    epsilon: float = 1e-3,
    axis: int | Sequence[int] = -1,
    rms_scaling: bool = False,
) -> Array:
    """``LayerNormalization``, as Keras 3's ``ops.layer_normalization`` computes it.

    Mean and (biased) variance over ``axis``; ``inv = gamma / sqrt(var + eps)``;
    ``y = x * inv + (beta - mean * inv)``. ``gamma``/``beta`` have the shape of the normalized
    dims in sorted-axis order and are *reshaped* (not transposed) onto them, as Keras does (this
    matters only for axis lists mixing negative and positive indices).

    ``rms_scaling=True`` (deprecated in Keras 3) computes ``x / sqrt(var + eps) * gamma``: it
    divides by the standard deviation without centering, not by the root mean square.
    """
    dtype = _float_dtype(x, gamma, beta)
    xa = _as(x, dtype)
    axes = sorted([axis] if isinstance(axis, int) else list(axis))
    ndim = xa.ndim
    bshape = [1] * ndim
    for a in axes:
        bshape[a] = xa.shape[a]
    only_last = axes == [ndim - 1]

    def _bcast(v: Array | None) -> Array | None:
        if v is None:
            return None
        va = _as(v, dtype)
        if va.ndim != ndim and not only_last:
            return va.reshape(bshape)
        return va

    red = tuple(a % ndim for a in axes)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mean = np.mean(xa, axis=red, keepdims=True)
        var = np.mean(np.square(np.abs(xa - mean)), axis=red, keepdims=True)
        g, b = _bcast(gamma), _bcast(beta)
        inv = 1.0 / np.sqrt(var + epsilon)
        if rms_scaling:
            y = xa * inv
            return _arr(y * g if g is not None else y)
        if g is not None:
            inv = inv * g
        res = -mean * inv
        if b is not None:
            res = res + b
        return _arr(xa * inv + res)


def embedding(ids: Array, table: Array) -> Array:
    """``Embedding``: rows of ``table`` (vocab, dim) for ``ids`` of any shape.

    Keras 3 / jax semantics: float ids are cast to int32 (truncation toward 0, NaN -> 0,
    out-of-int32-range -> out of range); ids in [-vocab, -1] count from the end; ids outside
    [-vocab, vocab) give a row of NaN. Keras 2 (TF) and TF.js raise on out-of-range or negative
    ids instead.
    """
    tab = np.asarray(table)
    tab = _as(tab, _float_dtype(tab))
    ids_a = np.asarray(ids)
    vocab = tab.shape[0]
    if np.issubdtype(ids_a.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            f = np.where(np.isnan(ids_a), 0.0, np.trunc(ids_a))
            f = np.clip(f, -(2.0**31), 2.0**31 - 1)
        idx = f.astype(np.int64)
    else:
        idx = ids_a.astype(np.int64)
    valid = (idx >= -vocab) & (idx < vocab)
    safe = np.where(valid, np.where(idx < 0, idx + vocab, idx), 0)
    out = tab[safe]
    if not valid.all():
        out = np.where(valid[..., None], out, np.nan).astype(tab.dtype, copy=False)
    return _arr(out)


# --------------------------------------------------------------------------------------------
# recurrent layers and wrappers
# --------------------------------------------------------------------------------------------


def _act_fn(act: ActivationLike) -> Callable[[Array], Array]:
    if act is None:
        return _linear
    if isinstance(act, str):
        name = act
        return lambda v: activation(v, name)
    return act


def _rnn_inputs(x: Array, go_backwards: bool, *weights: Any) -> tuple[Array, np.dtype[Any]]:
    dtype = _float_dtype(x, *weights)
    xa = _as(x, dtype)
    if xa.ndim != 3:
        raise InputError(f"recurrent layers take (batch, time, features), got {xa.shape}")
    if go_backwards:
        xa = xa[:, ::-1]
    return xa, dtype


def _rnn_output(outputs: list[Array], return_sequences: bool) -> Array:
    """Outputs in processing order (reversed time when go_backwards, as Keras returns them)."""
    if return_sequences:
        return np.stack(outputs, axis=1)
    return outputs[-1]


def simple_rnn(
    x: Array,
    kernel: Array,
    recurrent_kernel: Array,
    bias: Array | None = None,
    *,
    activation: ActivationLike = "tanh",
    return_sequences: bool = False,
    go_backwards: bool = False,
    use_bias: bool = True,
) -> Array:
    """``SimpleRNN``: ``h_t = act(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``, h_0 = 0.

    With ``go_backwards`` the sequence output is in processing order, i.e. reversed in time
    (Keras 2, 3 and TF.js all do this).
    """
    xa, dtype = _rnn_inputs(x, go_backwards, kernel, recurrent_kernel, bias)
    k, rk = _as(kernel, dtype), _as(recurrent_kernel, dtype)
    act = _act_fn(activation)
    proj = xa @ k
    if use_bias and bias is not None:
        proj = proj + _as(bias, dtype)
    h = np.zeros((xa.shape[0], rk.shape[0]), dtype=dtype)
    outputs = []
    for t in range(xa.shape[1]):
        h = act(proj[:, t] + h @ rk)
        outputs.append(h)
    return _rnn_output(outputs, return_sequences)


def lstm(
    x: Array,
    kernel: Array,
    recurrent_kernel: Array,
    bias: Array | None = None,
    *,
    activation: ActivationLike = "tanh",
    recurrent_activation: ActivationLike = "sigmoid",
    return_sequences: bool = False,
    go_backwards: bool = False,
    use_bias: bool = True,
) -> Array:
    """``LSTM`` with Keras' gate order i, f, c, o in kernel (in, 4u), recurrent (u, 4u), bias (4u,).

    ``c_t = f * c_{t-1} + i * act(z_c)``, ``h_t = o * act(c_t)``; zero initial state. Keras 3's
    default ``recurrent_activation`` is sigmoid; Keras 1 and TF.js default to hard_sigmoid (pass
    ``functools.partial(hard_sigmoid, keras_major=2)`` for the TF.js form).
    """
    xa, dtype = _rnn_inputs(x, go_backwards, kernel, recurrent_kernel, bias)
    k, rk = _as(kernel, dtype), _as(recurrent_kernel, dtype)
    act, rec = _act_fn(activation), _act_fn(recurrent_activation)
    u = rk.shape[0]
    proj = xa @ k
    if use_bias and bias is not None:
        proj = proj + _as(bias, dtype)
    h = np.zeros((xa.shape[0], u), dtype=dtype)
    c = np.zeros((xa.shape[0], u), dtype=dtype)
    outputs = []
    for t in range(xa.shape[1]):
        z = proj[:, t] + h @ rk
        i = rec(z[:, :u])
        f = rec(z[:, u : 2 * u])
        c = f * c + i * act(z[:, 2 * u : 3 * u])
        o = rec(z[:, 3 * u :])
        h = o * act(c)
        outputs.append(h)
    return _rnn_output(outputs, return_sequences)


def gru(
    x: Array,
    kernel: Array,
    recurrent_kernel: Array,
    bias: Array | None = None,
    *,
    activation: ActivationLike = "tanh",
    recurrent_activation: ActivationLike = "sigmoid",
    return_sequences: bool = False,
    go_backwards: bool = False,
    reset_after: bool = True,
    use_bias: bool = True,
) -> Array:
    """``GRU`` with Keras' gate order z, r, h in kernel (in, 3u) and recurrent kernel (u, 3u).

    ``reset_after=True`` (Keras 2/3 default): bias (2, 3u) = input and recurrent biases,
    ``hh = act(x_h + r * (h @ R_h + b_rh))``. ``reset_after=False`` (Keras 1, the only form TF.js
    supports): bias (3u,), ``hh = act(x_h + (r * h) @ R_h)``. ``h_t = z * h_{t-1} + (1 - z) * hh``.
    """
    xa, dtype = _rnn_inputs(x, go_backwards, kernel, recurrent_kernel, bias)
    k, rk = _as(kernel, dtype), _as(recurrent_kernel, dtype)
    act, rec = _act_fn(activation), _act_fn(recurrent_activation)
    u = rk.shape[0]
    in_bias: Array | None = None
    rec_bias: Array | None = None
    if use_bias and bias is not None:
        b = _as(bias, dtype)
        if reset_after:
            if b.shape != (2, 3 * u):
                raise InputError(f"reset_after GRU bias must be (2, {3 * u}), got {b.shape}")
            in_bias, rec_bias = b[0], b[1]
        else:
            if b.shape != (3 * u,):
                raise InputError(f"GRU bias must be ({3 * u},), got {b.shape}")
            in_bias = b
    proj = xa @ k
    if in_bias is not None:
        proj = proj + in_bias
    h = np.zeros((xa.shape[0], u), dtype=dtype)
    outputs = []
    for t in range(xa.shape[1]):
        xt = proj[:, t]
        if reset_after:
            inner = h @ rk
            if rec_bias is not None:
                inner = inner + rec_bias
            z = rec(xt[:, :u] + inner[:, :u])
            r = rec(xt[:, u : 2 * u] + inner[:, u : 2 * u])
            hh = act(xt[:, 2 * u :] + r * inner[:, 2 * u :])
        else:
            inner = h @ rk[:, : 2 * u]
            z = rec(xt[:, :u] + inner[:, :u])
            r = rec(xt[:, u : 2 * u] + inner[:, u:])
            hh = act(xt[:, 2 * u :] + (r * h) @ rk[:, 2 * u :])
        h = z * h + (1.0 - z) * hh
        outputs.append(h)
    return _rnn_output(outputs, return_sequences)


def bidirectional(
    forward_fn: Callable[[Array], Array],
    backward_fn: Callable[[Array], Array],
    x: Array,
    merge_mode: MergeMode = "concat",
    return_sequences: bool = False,
) -> Array | tuple[Array, Array]:
    """``Bidirectional``: merge ``forward_fn(x)`` with ``backward_fn(x)``.

    ``backward_fn`` must run the layer with ``go_backwards=True``; its sequence output (reversed
    in time) is flipped back before merging when ``return_sequences``. ``merge_mode`` None returns
    the pair (forward, backward).
    """
    y = forward_fn(x)
    y_rev = backward_fn(x)
    if return_sequences:
        y_rev = y_rev[:, ::-1]
    if merge_mode == "concat":
        return np.concatenate([y, y_rev], axis=-1)
    if merge_mode == "sum":
        return y + y_rev
    if merge_mode == "ave":
        return (y + y_rev) / 2.0
    if merge_mode == "mul":
        return y * y_rev
    if merge_mode is None:
        return y, y_rev
    raise InputError(f"unknown merge_mode {merge_mode!r}")


def time_distributed(fn: Callable[[Array], Array], x: Array) -> Array:
    """``TimeDistributed``: apply ``fn`` to every time slice of (batch, time, ...)."""
    xa = np.asarray(x)
    b, t = xa.shape[:2]
    y = np.asarray(fn(xa.reshape(b * t, *xa.shape[2:])))
    return y.reshape(b, t, *y.shape[1:])


# --------------------------------------------------------------------------------------------
# merges and reshaping
# --------------------------------------------------------------------------------------------


def _merge_inputs(inputs: Sequence[Array]) -> list[Array]:
    """Cast to the common float dtype and, as Keras, expand lower ranks at axis 1."""
    if len(inputs) < 1:
        raise InputError("a merge needs at least one input")
    dtype = _float_dtype(*inputs)
    arrays = [_as(a, dtype) for a in inputs]
    top = max(a.ndim for a in arrays)
    return [a.reshape(a.shape[:1] + (1,) * (top - a.ndim) + a.shape[1:]) for a in arrays]


def add(inputs: Sequence[Array]) -> Array:
    """``Add``: left-to-right sum."""
    arrays = _merge_inputs(inputs)
    out = arrays[0]
    with np.errstate(invalid="ignore"):
        for a in arrays[1:]:
            out = out + a
    return out


def subtract(inputs: Sequence[Array]) -> Array:
    """``Subtract``: exactly two inputs, ``a - b``."""
    if len(inputs) != 2:
        raise InputError("Subtract takes exactly 2 inputs")
    a, b = _merge_inputs(inputs)
    with np.errstate(invalid="ignore"):
        return a - b


def multiply(inputs: Sequence[Array]) -> Array:
    """``Multiply``: left-to-right product."""
    arrays = _merge_inputs(inputs)
    out = arrays[0]
    with np.errstate(invalid="ignore", over="ignore"):
        for a in arrays[1:]:
            out = out * a
    return out


def average(inputs: Sequence[Array]) -> Array:
    """``Average``: left-to-right sum divided by the number of inputs."""
    return add(inputs) / float(len(inputs))


def maximum(inputs: Sequence[Array]) -> Array:
    """``Maximum``: elementwise, NaN-propagating."""
    arrays = _merge_inputs(inputs)
    out = arrays[0]
    for a in arrays[1:]:
        out = np.maximum(out, a)
    return out


def minimum(inputs: Sequence[Array]) -> Array:
    """``Minimum``: elementwise, NaN-propagating."""
    arrays = _merge_inputs(inputs)
    out = arrays[0]
    for a in arrays[1:]:
        out = np.minimum(out, a)
    return out


def concatenate(inputs: Sequence[Array], axis: int = -1) -> Array:
    """``Concatenate`` along ``axis``."""
    dtype = _float_dtype(*inputs)
    return np.concatenate([_as(a, dtype) for a in inputs], axis=axis)


def reshape(x: Array, target_shape: Sequence[int]) -> Array:
    """``Reshape``: ``target_shape`` excludes the batch axis and may hold one -1."""
    xa = np.asarray(x)
    return xa.reshape(xa.shape[0], *target_shape)


def flatten(x: Array) -> Array:
    """``Flatten`` (channels_last): (batch, ...) -> (batch, prod(...)) in C order."""
    xa = np.asarray(x)
    return xa.reshape(xa.shape[0], -1)


def permute(x: Array, dims: Sequence[int]) -> Array:
    """``Permute``: ``dims`` are 1-based and exclude the batch axis, as in Keras."""
    xa = np.asarray(x)
    if sorted(dims) != list(range(1, xa.ndim)):
        raise InputError(f"dims {dims!r} must be a permutation of 1..{xa.ndim - 1}")
    return np.transpose(xa, (0, *dims))


def repeat_vector(x: Array, n: int) -> Array:
    """``RepeatVector``: (batch, features) -> (batch, n, features)."""
    xa = np.asarray(x)
    if xa.ndim != 2:
        raise InputError(f"RepeatVector takes (batch, features), got {xa.shape}")
    return np.repeat(xa[:, None, :], n, axis=1)


# ---------------------------------------------------------------------- whole models
def _snake(name: str) -> str:
    """tfjs spells activations in camelCase (``hardSigmoid``); Keras in snake_case."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _layer_activation(value: Any, keras_major: int) -> ActivationLike:
    """A layer config's ``activation`` as a name or callable for the functions above."""
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") if value.get("class_name") == "function" else value.get(
            "class_name")
    name = _snake(str(value or "linear"))
    if name == "gelu_new":
        return _gelu_new
    if name == "hard_sigmoid":
        return lambda v: hard_sigmoid(v, keras_major=keras_major)
    return name


def _recurrent(call: Any, cfg: dict[str, Any], x: Array, major: int, *, under: str | None = None,
               go_backwards: bool | None = None) -> Array:
    cls = cfg["__class__"]
    use_bias = bool(cfg.get("use_bias", True))
    common: dict[str, Any] = {
        "activation": _layer_activation(cfg.get("activation", "tanh"), major),
        "return_sequences": bool(cfg.get("return_sequences", False)),
        "go_backwards": bool(cfg.get("go_backwards", False)) if go_backwards is None else go_backwards,
        "use_bias": use_bias,
    }
    weights = (call.weight("kernel", under=under), call.weight("recurrent_kernel", under=under),
               call.weight("bias", under=under) if use_bias else None)
    if cls == "SimpleRNN":
        return simple_rnn(x, *weights, **common)
    common["recurrent_activation"] = _layer_activation(cfg.get("recurrent_activation", "sigmoid"), major)
    if cls == "LSTM":
        return lstm(x, *weights, **common)
    if cls == "GRU":
        return gru(x, *weights, reset_after=bool(cfg.get("reset_after", False)), **common)
    raise NotImplementedError(f"recurrent layer {cls}")


_MERGES: dict[str, Callable[[Sequence[Array]], Array]] = {
    "Add": lambda xs: add(xs), "Subtract": lambda xs: subtract(xs), "Multiply": lambda xs: multiply(xs),
    "Average": lambda xs: average(xs), "Maximum": lambda xs: maximum(xs), "Minimum": lambda xs: minimum(xs),
}
_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
             "GaussianDropout", "AlphaDropout", "ActivityRegularization", "InputLayer")


def apply_layer(call: Any, inputs: Sequence[Array], keras_major: int = 3) -> Array:
    """One layer call (a :class:`jsengine_ml.topology.LayerCall`) on its input arrays, in numpy."""
    cls, cfg, x = call.class_name, call.config, inputs[0]
    act = _layer_activation(cfg.get("activation"), keras_major)
    wrapper = cls in ("Bidirectional", "TimeDistributed")  # their weights belong to the wrapped layers
    bias = call.weight("bias", required=False) if cfg.get("use_bias", True) and not wrapper else None
    geometry = {"strides": cfg.get("strides", 1), "padding": str(cfg.get("padding", "valid")).lower(),
                "dilation_rate": cfg.get("dilation_rate", 1)}
    if cls in _IDENTITY:
        return x
    if cls in _MERGES:
        return _MERGES[cls](inputs)
    if cls == "Concatenate":
        return concatenate(inputs, axis=int(cfg.get("axis", -1)))
    if cls == "Dense":
        return dense(x, call.weight("kernel"), bias, activation=act)
    if cls in ("Conv1D", "Conv2D"):
        return conv(x, call.weight("kernel"), bias, activation=act, **geometry)
    if cls == "DepthwiseConv2D":
        return depthwise_conv(x, call.weight("depthwise_kernel"), bias, activation=act, **geometry)
    if cls in ("SeparableConv1D", "SeparableConv2D"):
        return separable_conv(x, call.weight("depthwise_kernel"), call.weight("pointwise_kernel"), bias,
                              activation=act, **geometry)
    if cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
        return pool(x, cfg.get("pool_size", 2), cfg.get("strides"), geometry["padding"],
                    "max" if cls.startswith("Max") else "avg")
    if cls.startswith("Global"):
        return global_pool(x, "max" if "Max" in cls else "avg", bool(cfg.get("keepdims", False)))
    if cls == "Flatten":
        return flatten(x)
    if cls == "Reshape":
        return reshape(x, cfg["target_shape"])
    if cls == "Permute":
        return permute(x, cfg["dims"])
    if cls == "RepeatVector":
        return repeat_vector(x, int(cfg["n"]))
    if cls == "BatchNormalization":
        axis = cfg.get("axis", -1)
        return batch_norm(x, call.weight("gamma") if cfg.get("scale", True) else None,
                          call.weight("beta") if cfg.get("center", True) else None, call.weight("moving_mean"),
                          call.weight("moving_variance"), float(cfg.get("epsilon", 1e-3)),
                          int(axis[0] if isinstance(axis, list) else axis))
    if cls == "LayerNormalization":
        return layer_norm(x, call.weight("gamma") if cfg.get("scale", True) else None,
                          call.weight("beta") if cfg.get("center", True) else None, float(cfg.get("epsilon", 1e-3)),
                          cfg.get("axis", -1), bool(cfg.get("rms_scaling", False)))
    if cls == "Activation":
        return _apply_activation(x, act)
    if cls == "ReLU":
        return relu(x, float(cfg.get("negative_slope") or 0.0), cfg.get("max_value"),
                    float(cfg.get("threshold") or 0.0), keras_major=keras_major)
    if cls == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha"))
        return leaky_relu(x, 0.3 if slope is None else float(slope))
    if cls == "PReLU":
        return prelu(x, call.weight("alpha"))
    if cls == "ELU":
        return elu(x, float(cfg.get("alpha", 1.0)))
    if cls == "Softmax":
        return softmax(x, cfg.get("axis", -1))
    if cls == "ThresholdedReLU":
        return thresholded_relu(x, float(cfg.get("theta", 1.0)))
    if cls == "Embedding":
        return embedding(x, call.weight("embeddings"))
    if cls in ("SimpleRNN", "LSTM", "GRU"):
        return _recurrent(call, {**cfg, "__class__": cls}, x, keras_major)
    if cls == "Bidirectional":
        inner = cfg["layer"]
        forward_cfg = {**inner.get("config", {}), "__class__": inner.get("class_name")}
        backwards = not forward_cfg.get("go_backwards", False)
        merged = bidirectional(
            lambda v: _recurrent(call, forward_cfg, v, keras_major, under="forward"),
            lambda v: _recurrent(call, forward_cfg, v, keras_major, under="backward", go_backwards=backwards),
            x, cfg.get("merge_mode", "concat"), bool(forward_cfg.get("return_sequences", False)))
        if isinstance(merged, tuple):
            raise NotImplementedError("Bidirectional merge_mode=None gives two outputs")
        return merged
    if cls == "TimeDistributed":
        inner = cfg["layer"]
        inner_call = type(call)(call.layer, call.node, str(inner.get("class_name")), dict(inner.get("config", {})),
                                call.inputs, call.weights)
        return time_distributed(lambda v: apply_layer(inner_call, [v], keras_major), x)
    raise NotImplementedError(f"layer {call.layer!r} ({cls}) has no numpy reference")


def forward(graph: Any, inputs: Array | Sequence[Array], dtype: Any = np.float32) -> list[Array]:
    """Run a whole model (a :class:`jsengine_ml.topology.Graph`) in numpy; one array per output.

    ``inputs``: one array, or one per model input in order, batch first (flat rows are reshaped to
    each input's shape). Float inputs are computed in ``dtype``; integer inputs stay integers.
    """
    xs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    if len(xs) != len(graph.inputs):
        raise InputError(f"the model takes {len(graph.inputs)} inputs, got {len(xs)}")
    values: dict[tuple[str, int, int], Array] = {}
    for spec, x in zip(graph.inputs, xs, strict=True):
        x = np.asarray(x)
        x = x.reshape(len(x), *spec.shape)
        values[(spec.ref.layer, 0, 0)] = x.astype(np.int32 if spec.dtype == "int32" else dtype, copy=False)
    for call in graph.calls:
        args = [values[(r.layer, r.node, r.index)] for r in call.inputs]
        values[(call.layer, call.node, 0)] = apply_layer(call, args, graph.keras_major)
    return [values[(r.layer, r.node, r.index)] for r in graph.outputs]
