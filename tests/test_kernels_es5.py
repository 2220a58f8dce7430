"""The ES5 kernel set (jsengine_ml/compiled/kernels_es5.js) against the numpy oracles, on every engine.

Every kernel runs in its generic form and, for the kernels that specialize (dense, conv2d,
depthwise2d, pool2d, rnn), through the function ``specialize(name, args)`` generates for the same
arguments (conv2d in both of its code shapes). Shapes are edge cases plus seeded random draws;
values are seeded random with NaN / ±inf planted; NaN positions must match the oracle exactly.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import zlib

import kernel_oracle as ko
import numpy as np
import pytest
from kernelkit import COMPILED, KernelRunner

from jsengine_ml import available_backends, create_engine
from jsengine_ml.compiled import abi

BACKENDS = [b.name for b in available_backends() if b.available and b.name in ("quickjs", "duktape", "v8")]
SPECIALIZING = ("dense", "conv2d", "depthwise2d", "pool2d", "rnn")
HEAP_BYTES = 4 << 20
INF = math.inf


def js_number(value: float) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


class ES5:
    """The ES5 kernel set in one engine, with a bump allocator reset before every test."""

    def __init__(self, backend: str):
        self.backend = backend
        self.engine = create_engine(backend)
        self.kr = KernelRunner(self.engine, "es5", HEAP_BYTES)
        self.base = self.kr.next

    def reset(self) -> None:
        self.kr.next = self.base

    def alloc(self, array: np.ndarray) -> int:
        return self.kr.alloc(np.ascontiguousarray(array))

    def zeros(self, count: int, fill: float = 0.0) -> int:
        return self.kr.alloc(np.full(max(count, 1), fill, np.float32))

    def read(self, addr: int, shape: tuple[int, ...]) -> np.ndarray:
        if math.prod(shape) == 0:
            return np.zeros(shape, np.float32)
        return self.kr.read(addr, shape)

    def specialize(self, name: str, args: tuple[float, ...], options: dict | None = None) -> bool:
        """Specialize into the global ``__kt_fn``; False when specialize() declined (null).

        ``options`` (for create()) specializes with another kernel set over the same heap."""
        js = ", ".join(js_number(a) for a in args)
        kernels = "__kk.k" if options is None else f"__jsml.es5Kernels.create(__kk.heap, {json.dumps(options)})"
        return bool(self.engine.eval(f"(__kt_fn = {kernels}.specialize({name!r}, [{js}])) === null ? 0 : 1"))

    def call_special(self, args: tuple[float, ...]) -> int:
        js = ", ".join(js_number(a) for a in args)
        return int(self.engine.eval(f"__kt_fn.apply(null, [{js}])"))

    def run(self, name: str, args: tuple[float, ...], variant: str) -> int:
        """Run kernel ``name`` generic, or specialized for these very arguments (which must succeed)."""
        assert len(args) == len(abi.KERNELS[name])
        if variant == "generic":
            return self.kr.call(name, *args)
        assert self.specialize(name, args, OPTIONS[variant]), f"specialize({name!r}) declined a case under the cap"
        return self.call_special(args)

    def close(self) -> None:
        self.engine.close()


@pytest.fixture(scope="module", params=BACKENDS)
def es5(request):
    ks = ES5(request.param)
    yield ks
    ks.close()


@pytest.fixture
def k(es5):
    es5.reset()
    return es5


def seed(case: object) -> int:
    """A seed stable across processes (str hashes are salted)."""
    return zlib.crc32(repr(case).encode())


def rand(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def check(got: np.ndarray, want: np.ndarray, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    want = np.asarray(want, np.float64)
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"NaN positions differ: got {np.argwhere(np.isnan(got))[:8]}, " \
        f"want {np.argwhere(nan)[:8]}"
    np.testing.assert_allclose(got[~nan], want[~nan], rtol=rtol, atol=atol)


VARIANTS = ["generic", "special"]
#: create() options per specialized variant: conv2d has two code shapes, whole-image unrolling (the
#: default for small images) and per-pixel loops over border segments; both are tested everywhere.
OPTIONS = {"special": None, "spatial": {"spatial": True}, "segments": {"spatial": False}}


# ---------------------------------------------------------------------------------------------- dense
DENSE_CASES = [
    # m, k, n, lo, hi, bias
    (0, 5, 3, -INF, INF, True),
    (1, 1, 1, -INF, INF, True),
    (3, 13, 64, 0.0, INF, True),
    (2, 7, 9, -INF, INF, False),
    (4, 16, 8, 0.0, 6.0, True),
    (5, 70, 10, -INF, INF, True),  # longer than one chunk of unrolled inputs
    (2, 130, 3, -0.5, 0.25, True),
    (3, 12, 2, -INF, INF, True),
    (1, 64, 17, 0.0, INF, True),
    (3, 6, 7, -INF, INF, True),  # one panel of 7 columns
    (2, 11, 15, 0.0, INF, True),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", DENSE_CASES, ids=[f"m{c[0]}k{c[1]}n{c[2]}" for c in DENSE_CASES])
def test_dense(k, variant, case):
    m, kk, n, lo, hi, with_bias = case
    rng = np.random.default_rng(seed(case))
    x, kernel = rand(rng, m, kk), rand(rng, kk, n, scale=0.5)
    bias = rand(rng, n) if with_bias else None
    xa, wa, ya = k.alloc(x), k.alloc(abi.pack_dense(kernel, bias)), k.zeros(m * n, np.nan)
    assert k.run("dense", (xa, wa, ya, m, kk, n, lo, hi), variant) == 0
    check(k.read(ya, (m, n)), ko.dense(x, kernel, bias, lo, hi))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("lo_hi", [(-INF, INF), (0.0, INF), (0.0, 6.0)], ids=["linear", "relu", "relu6"])
def test_dense_nan_and_inf_propagate(k, variant, lo_hi):
    rng = np.random.default_rng(7)
    m, kk, n = 6, 9, 11
    x, kernel, bias = rand(rng, m, kk), rand(rng, kk, n), rand(rng, n)
    x[1, 3] = np.nan
    x[2, 0] = np.inf
    x[3, 8] = -np.inf
    x[4, 2], x[4, 5] = np.inf, -np.inf
    xa, wa, ya = k.alloc(x), k.alloc(abi.pack_dense(kernel, bias)), k.zeros(m * n)
    assert k.run("dense", (xa, wa, ya, m, kk, n, *lo_hi), variant) == 0
    with np.errstate(invalid="ignore"):
        want = ko.dense(x, kernel, bias, *lo_hi)
    check(k.read(ya, (m, n)), want)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("draw", range(6))
def test_dense_random_shapes(k, variant, draw):
    rng = np.random.default_rng(1000 + draw)
    m, kk, n = int(rng.integers(0, 9)), int(rng.integers(1, 90)), int(rng.integers(1, 40))
    lo, hi = [(-INF, INF), (0.0, INF), (0.0, 6.0), (-1.0, 2.0)][int(rng.integers(0, 4))]
    x, kernel, bias = rand(rng, m, kk, scale=2.0), rand(rng, kk, n, scale=0.3), rand(rng, n)
    xa, wa, ya = k.alloc(x), k.alloc(abi.pack_dense(kernel, bias)), k.zeros(m * n, np.nan)
    assert k.run("dense", (xa, wa, ya, m, kk, n, lo, hi), variant) == 0
    check(k.read(ya, (m, n)), ko.dense(x, kernel, bias, lo, hi))


def test_specialized_dense_reads_addresses_and_rows_at_call_time(k):
    rng = np.random.default_rng(3)
    kk, n = 13, 10
    kernel, bias = rand(rng, kk, n), rand(rng, n)
    wa = k.alloc(abi.pack_dense(kernel, bias))
    x1, x2 = rand(rng, 2, kk), rand(rng, 7, kk)
    a1, a2, y1, y2 = k.alloc(x1), k.alloc(x2), k.zeros(2 * n), k.zeros(7 * n)
    assert k.specialize("dense", (a1, wa, y1, 2, kk, n, 0.0, INF))
    assert k.call_special((a2, wa, y2, 7, kk, n, 0.0, INF)) == 0
    check(k.read(y2, (7, n)), ko.dense(x2, kernel, bias, 0.0, INF))
    assert k.call_special((a1, wa, y1, 2, kk, n, 0.0, INF)) == 0
    check(k.read(y1, (2, n)), ko.dense(x1, kernel, bias, 0.0, INF))


def test_specialized_dense_called_with_other_shapes_falls_back_to_the_generic_kernel(k):
    rng = np.random.default_rng(4)
    kernel, bias = rand(rng, 5, 3), rand(rng, 3)
    other, other_bias = rand(rng, 4, 6), rand(rng, 6)
    wa, wb = k.alloc(abi.pack_dense(kernel, bias)), k.alloc(abi.pack_dense(other, other_bias))
    x = rand(rng, 3, 5)
    xa, ya = k.alloc(x), k.zeros(3 * 6)
    assert k.specialize("dense", (xa, wa, ya, 3, 5, 3, -INF, INF))
    x2 = rand(rng, 3, 4)
    xb = k.alloc(x2)
    assert k.call_special((xb, wb, ya, 3, 4, 6, -INF, INF)) == 0  # k, n differ: generic
    check(k.read(ya, (3, 6)), ko.dense(x2, other, other_bias, -INF, INF))
    assert k.call_special((xa, wa, ya, 3, 5, 3, 0.0, INF)) == 0  # lo differs: generic
    check(k.read(ya, (3, 3)), ko.dense(x, kernel, bias, 0.0, INF))


def test_specialize_declines_over_the_size_cap_and_for_loop_kernels(k):
    cap = int(k.engine.eval("__kk.k.maxTerms"))
    n = 64
    kk = cap // n + 1
    wa = k.zeros(abi.dense_packed_size(kk, n))
    assert not k.specialize("dense", (16, wa, 16, 1, kk, n, -INF, INF))
    assert k.specialize("dense", (16, wa, 16, 1, cap // n, n, -INF, INF))
    for name in abi.KERNELS:
        if name not in SPECIALIZING:
            assert not k.specialize(name, tuple([16] * len(abi.KERNELS[name])))


# ---------------------------------------------------------------------------------------------- conv
def out_size(size: int, kernel: int, stride: int, dil: int, pad_a: int, pad_b: int) -> int:
    return (size + pad_a + pad_b - ((kernel - 1) * dil + 1)) // stride + 1


def same_pads(size: int, kernel: int, stride: int, dil: int) -> tuple[int, int]:
    eff = (kernel - 1) * dil + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def geometry(in_h, in_w, k_h, k_w, stride, dil, padding):
    if padding == "same":
        pt, pb = same_pads(in_h, k_h, stride[0], dil[0])
        pl, pr = same_pads(in_w, k_w, stride[1], dil[1])
    elif padding == "valid":
        pt = pb = pl = pr = 0
    else:
        pt, pb, pl, pr = padding
    out_h = out_size(in_h, k_h, stride[0], dil[0], pt, pb)
    out_w = out_size(in_w, k_w, stride[1], dil[1], pl, pr)
    return (pt, pl), (out_h, out_w)


CONV_CASES = [
    # batch, in_h, in_w, in_c, k_h, k_w, out_c, stride, dil, padding, lo, hi
    (2, 8, 8, 1, 3, 3, 8, (1, 1), (1, 1), "same", 0.0, INF),  # the digits CNN's first layer
    (1, 4, 4, 8, 3, 3, 16, (1, 1), (1, 1), "same", 0.0, INF),  # and its second
    (2, 5, 6, 3, 3, 2, 5, (2, 1), (1, 1), "same", -INF, INF),
    (1, 7, 7, 2, 3, 3, 9, (1, 1), (2, 2), "valid", -INF, INF),
    (2, 1, 9, 4, 1, 3, 10, (1, 2), (1, 1), "same", 0.0, 6.0),  # Conv1D
    (1, 6, 5, 3, 2, 2, 8, (2, 2), (1, 1), "valid", -INF, INF),
    (1, 3, 4, 5, 1, 1, 7, (1, 1), (1, 1), "valid", -INF, INF),  # 1x1
    (1, 4, 5, 2, 3, 3, 3, (1, 1), (1, 1), (2, 1, 0, 2), -1.0, 1.0),  # rows whose window is padding only
    (0, 5, 5, 2, 3, 3, 4, (1, 1), (1, 1), "same", -INF, INF),
    (1, 6, 7, 1, 5, 4, 2, (3, 2), (1, 2), "same", -INF, INF),
    (1, 12, 12, 4, 3, 3, 2, (1, 1), (1, 1), "same", 0.0, INF),  # too many inputs to unroll the whole image
]


def conv_ids(cases):
    return [f"b{c[0]}_{c[1]}x{c[2]}x{c[3]}_k{c[4]}x{c[5]}_s{c[7][0]}{c[7][1]}_d{c[8][0]}{c[8][1]}_{c[9]}"
            for c in cases]


@pytest.mark.parametrize("variant", ["generic", "spatial", "segments"])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_ids(CONV_CASES))
def test_conv2d(k, variant, case):
    batch, in_h, in_w, in_c, k_h, k_w, out_c, stride, dil, padding, lo, hi = case
    rng = np.random.default_rng(seed(case))
    pad, (out_h, out_w) = geometry(in_h, in_w, k_h, k_w, stride, dil, padding)
    x, kernel, bias = rand(rng, batch, in_h, in_w, in_c), rand(rng, k_h, k_w, in_c, out_c, scale=0.4), rand(rng, out_c)
    w = abi.pack_dense(kernel.reshape(k_h * k_w * in_c, out_c), bias)
    xa, wa = k.alloc(x), k.alloc(w)
    scratch = k.zeros(out_h * out_w * k_h * k_w * in_c)
    ya = k.zeros(batch * out_h * out_w * out_c, np.nan)
    args = (xa, wa, ya, scratch, batch, in_h, in_w, in_c, k_h, k_w, out_c, *stride, *dil, *pad, out_h, out_w, lo, hi)
    assert k.run("conv2d", args, variant) == 0
    want = ko.conv2d(x, kernel, bias, stride, dil, pad, (out_h, out_w), lo, hi)
    check(k.read(ya, (batch, out_h, out_w, out_c)), want)


@pytest.mark.parametrize("variant", ["generic", "spatial", "segments"])
def test_conv2d_nan_input_reaches_exactly_the_windows_holding_it(k, variant):
    rng = np.random.default_rng(11)
    x, kernel, bias = rand(rng, 1, 6, 6, 2), rand(rng, 3, 3, 2, 4), rand(rng, 4)
    x[0, 2, 3, 1] = np.nan
    x[0, 5, 0, 0] = np.inf
    pad, out = geometry(6, 6, 3, 3, (1, 1), (1, 1), "same")
    xa, wa = k.alloc(x), k.alloc(abi.pack_dense(kernel.reshape(18, 4), bias))
    ya = k.zeros(36 * 4)
    args = (xa, wa, ya, k.zeros(36 * 18), 1, 6, 6, 2, 3, 3, 4, 1, 1, 1, 1, *pad, *out, 0.0, INF)
    assert k.run("conv2d", args, variant) == 0
    with np.errstate(invalid="ignore"):
        want = ko.conv2d(x, kernel, bias, (1, 1), (1, 1), pad, out, 0.0, INF)
    check(k.read(ya, (1, 6, 6, 4)), want)


@pytest.mark.parametrize("variant", ["generic", "spatial", "segments"])
@pytest.mark.parametrize("draw", range(6))
def test_conv2d_random_shapes(k, variant, draw):
    rng = np.random.default_rng(2000 + draw)
    k_h, k_w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride, dil = tuple(int(v) for v in rng.integers(1, 3, 2)), tuple(int(v) for v in rng.integers(1, 3, 2))
    in_h, in_w = int(rng.integers((k_h - 1) * dil[0] + 1, 9)), int(rng.integers((k_w - 1) * dil[1] + 1, 9))
    batch, in_c, out_c = int(rng.integers(0, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 12))
    padding = ["same", "valid"][int(rng.integers(0, 2))]
    pad, (out_h, out_w) = geometry(in_h, in_w, k_h, k_w, stride, dil, padding)
    x, kernel, bias = rand(rng, batch, in_h, in_w, in_c), rand(rng, k_h, k_w, in_c, out_c), rand(rng, out_c)
    w = abi.pack_dense(kernel.reshape(k_h * k_w * in_c, out_c), bias)
    xa, wa, ya = k.alloc(x), k.alloc(w), k.zeros(batch * out_h * out_w * out_c, np.nan)
    args = (xa, wa, ya, k.zeros(out_h * out_w * k_h * k_w * in_c), batch, in_h, in_w, in_c, k_h, k_w, out_c,
            *stride, *dil, *pad, out_h, out_w, 0.0, INF)
    assert k.run("conv2d", args, variant) == 0
    want = ko.conv2d(x, kernel, bias, stride, dil, pad, (out_h, out_w), 0.0, INF)
    check(k.read(ya, (batch, out_h, out_w, out_c)), want)


DEPTHWISE_CASES = [
    # batch, in_h, in_w, in_c, k_h, k_w, mult, stride, dil, padding, lo, hi
    (2, 6, 6, 3, 3, 3, 1, (1, 1), (1, 1), "same", 0.0, INF),
    (1, 5, 7, 2, 3, 3, 2, (2, 2), (1, 1), "same", -INF, INF),
    (1, 7, 6, 4, 2, 3, 3, (1, 2), (2, 1), "valid", 0.0, 6.0),
    (2, 1, 10, 5, 1, 4, 1, (1, 1), (1, 1), "same", -INF, INF),
    (1, 4, 4, 3, 3, 3, 2, (1, 1), (1, 1), (2, 0, 1, 2), -INF, INF),
    (0, 3, 3, 2, 3, 3, 1, (1, 1), (1, 1), "same", -INF, INF),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=conv_ids(DEPTHWISE_CASES))
def test_depthwise2d(k, variant, case):
    batch, in_h, in_w, in_c, k_h, k_w, mult, stride, dil, padding, lo, hi = case
    rng = np.random.default_rng(seed(case))
    pad, (out_h, out_w) = geometry(in_h, in_w, k_h, k_w, stride, dil, padding)
    x, kernel, bias = rand(rng, batch, in_h, in_w, in_c), rand(rng, k_h, k_w, in_c, mult), rand(rng, in_c * mult)
    if batch:
        x[0, in_h // 2, in_w // 2, 0] = np.nan
    w = np.concatenate([bias, kernel.reshape(k_h * k_w, in_c * mult).reshape(-1)]).astype(np.float32)
    xa, wa, ya = k.alloc(x), k.alloc(w), k.zeros(batch * out_h * out_w * in_c * mult, np.nan)
    args = (xa, wa, ya, batch, in_h, in_w, in_c, k_h, k_w, mult, *stride, *dil, *pad, out_h, out_w, lo, hi)
    assert k.run("depthwise2d", args, variant) == 0
    with np.errstate(invalid="ignore"):
        want = ko.depthwise2d(x, kernel, bias, stride, dil, pad, (out_h, out_w), lo, hi)
    check(k.read(ya, (batch, out_h, out_w, in_c * mult)), want)


# ---------------------------------------------------------------------------------------------- pools
POOL_CASES = [
    # batch, in_h, in_w, c, k, stride, padding
    (2, 8, 8, 8, (2, 2), (2, 2), "valid"),
    (1, 5, 5, 3, (3, 3), (2, 2), "same"),  # windows clip at the border: avg divides by the in-bounds count
    (2, 4, 6, 2, (3, 3), (1, 1), "same"),
    (1, 7, 5, 1, (2, 3), (3, 2), "same"),
    (1, 1, 9, 4, (1, 3), (1, 2), "valid"),
    (0, 4, 4, 2, (2, 2), (2, 2), "valid"),
    (1, 3, 3, 2, (2, 2), (2, 2), (2, 0, 2, 0)),  # windows with no element in bounds: -inf (max), NaN (avg)
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[1]}x{c[2]}x{c[3]}_k{c[4]}_s{c[5]}_{c[6]}" for c in POOL_CASES])
def test_pool2d(k, mode, case, variant):
    batch, in_h, in_w, c, kern, stride, padding = case
    rng = np.random.default_rng(seed(case))
    pad, (out_h, out_w) = geometry(in_h, in_w, kern[0], kern[1], stride, (1, 1), padding)
    x = rand(rng, batch, in_h, in_w, c)
    if batch and in_h > 2:
        x[0, 1, 1, 0] = np.nan
        x[-1, 2, 0, c - 1] = -np.inf
    xa, ya = k.alloc(x), k.zeros(batch * out_h * out_w * c, 123.0)
    args = (xa, ya, batch, in_h, in_w, c, *kern, *stride, *pad, out_h, out_w, abi.POOL_CODES[mode])
    assert k.run("pool2d", args, variant) == 0
    with np.errstate(invalid="ignore"):
        want = ko.pool2d(x, kern, stride, pad, (out_h, out_w), mode)
    check(k.read(ya, (batch, out_h, out_w, c)), want)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape", [(3, 11, 8), (1, 1, 5), (2, 7, 1), (0, 3, 2)])
def test_global_pool(k, mode, shape):
    rng = np.random.default_rng(sum(shape))
    x = rand(rng, *shape)
    if shape[0] and shape[1] > 1:
        x[0, 1, 0] = np.nan
        x[-1, 0, -1] = np.inf
    xa, ya = k.alloc(x), k.zeros(shape[0] * shape[2])
    assert k.run("global_pool", (xa, ya, *shape, abi.POOL_CODES[mode]), "generic") == 0
    check(k.read(ya, (shape[0], shape[2])), ko.global_pool(x, mode))


# ---------------------------------------------------------------------------------------------- element-wise
UNARY_PARAMS = {"elu": (1.0, 0.0), "leaky_relu": (0.2, 0.0), "relu_clip": (0.1, 6.0), "scale": (2.5, -1.0),
                "thresholded_relu": (0.7, 0.0)}
SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-8, -1e-8, 1e-30, 0.5, -0.5, 0.84375, -1.2, 2.0, 3.1,
                  -5.0, 6.0, 7.5, 20.0, -20.0, 30.0, -30.0, 88.0, -100.0, 1e4, -1e4, 3e38, -3e38]


@pytest.mark.parametrize("in_place", [False, True], ids=["out", "in_place"])
@pytest.mark.parametrize("kind", abi.UNARY)
def test_unary(k, kind, in_place):
    rng = np.random.default_rng(abi.UNARY_CODES[kind])
    x = np.concatenate([np.array(SPECIAL_VALUES, np.float32), rand(rng, 37, scale=3.0)])
    a, b = UNARY_PARAMS.get(kind, (0.0, 0.0))
    xa = k.alloc(x)
    ya = xa if in_place else k.zeros(x.size)
    assert k.run("unary", (xa, ya, x.size, abi.UNARY_CODES[kind], a, b), "generic") == 0
    with np.errstate(all="ignore"):
        want = ko.unary(x, kind, a, b).astype(np.float32)  # what a float32 output can hold
    check(k.read(ya, (x.size,)), want, atol=1e-6)


def test_elu_with_another_alpha_and_empty_counts(k):
    x = np.array([-3.0, -0.5, 0.0, 2.0, np.nan, -np.inf], np.float32)
    xa, ya = k.alloc(x), k.zeros(x.size, 9.0)
    assert k.run("unary", (xa, ya, x.size, abi.UNARY_CODES["elu"], 0.5, 0.0), "generic") == 0
    check(k.read(ya, (x.size,)), ko.unary(x, "elu", 0.5))
    assert k.run("unary", (xa, ya, 0, abi.UNARY_CODES["sigmoid"], 0.0, 0.0), "generic") == 0
    check(k.read(ya, (x.size,)), ko.unary(x, "elu", 0.5))  # count 0 writes nothing


def test_erf_is_accurate_to_1e_7(k):
    grid = np.concatenate([np.linspace(-7, 7, 2801), [0.84374, 0.84376, 1.2499, 1.2501, 2.857, 2.858, 5.999, 6.001,
                                                       1e-12, -1e-12, 3e-9, 27.9]])
    k.engine.put_array("__kt_grid", grid.astype(np.float32))
    got = k.engine.get_array(
        "(function(){ var g = __kt_grid, o = new Float64Array(g.length), e = __jsml.es5Kernels.erf;"
        " for (var i = 0; i < g.length; i++) { o[i] = e(g[i]); } return new Float32Array(o.buffer); })()"
    )
    values = np.frombuffer(got.tobytes(), np.float64)
    want = np.array([math.erf(float(v)) for v in grid.astype(np.float32)])
    assert np.abs(values - want).max() <= 1e-7
    assert k.engine.eval("(function (e) { return isNaN(e(NaN)) && e(Infinity) === 1 && e(-Infinity) === -1; })"
                         "(__jsml.es5Kernels.erf)")


@pytest.mark.parametrize("name", ["expm1", "log1p", "tanh"])
def test_es5_math_fallbacks_match_numpy(k, name):
    """The fallbacks used where Math.expm1 / log1p / tanh are missing (Duktape), run on every engine."""
    grid = np.concatenate([np.linspace(-30, 30, 1201), np.geomspace(1e-12, 0.9, 200), -np.geomspace(1e-12, 0.45, 200),
                           [0.0, 0.55, -0.55, 0.999, 22.5, -22.5, 700.0, np.inf]])
    if name == "log1p":
        grid = grid[grid > -1]
    k.engine.put_array("__kt_grid", grid.astype(np.float32))
    got = k.engine.get_array(
        "(function(){ var g = __kt_grid, o = new Float64Array(g.length), f = __jsml.es5Kernels.fallbacks." + name + ";"
        " for (var i = 0; i < g.length; i++) { o[i] = f(g[i]); } return new Float32Array(o.buffer); })()"
    )
    values = np.frombuffer(got.tobytes(), np.float64)
    with np.errstate(over="ignore"):
        want = getattr(np, name)(grid.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(values, want, rtol=1e-14, atol=0)
    assert k.engine.eval(f"(function (f) {{ return isNaN(f(NaN)); }})(__jsml.es5Kernels.fallbacks.{name})")


SOFTMAX_CASES = [(3, 5, 1), (2, 4, 3), (1, 1, 1), (4, 10, 1), (0, 3, 2), (2, 1, 4)]


@pytest.mark.parametrize("log", [0, 1], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", SOFTMAX_CASES, ids=[f"{o}x{a}x{i}" for o, a, i in SOFTMAX_CASES])
def test_softmax(k, shape, log):
    outer, axis, inner = shape
    rng = np.random.default_rng(outer * 100 + axis * 10 + inner)
    x = rand(rng, outer, axis, inner, scale=4.0)
    if outer >= 2 and axis >= 3:
        x[0, 1, 0] = np.nan  # one NaN poisons its whole slice
        x[1, 2, -1] = np.inf
        x[-1, :, 0] = -np.inf if outer >= 3 else x[-1, :, 0]
    if outer >= 4:
        x[2, 0, 0] = 80.0  # large values: max-subtracted, no overflow
    xa = k.alloc(x)
    for ya in (k.zeros(x.size), xa):  # then in place
        if ya == xa:
            k.kr.engine.put_array("__kt_tmp", x.reshape(-1))
            k.kr.engine.eval(f"__kk.write({xa}, __kt_tmp)")
        assert k.run("softmax", (xa, ya, outer, axis, inner, log), "generic") == 0
        with np.errstate(invalid="ignore"):
            want = ko.softmax(x, bool(log))
        check(k.read(ya, shape), want)


def test_prelu(k):
    rng = np.random.default_rng(5)
    x, alpha = rand(rng, 4, 7), rand(rng, 7)
    x[1, 2], x[2, 3], x[3, 0] = np.nan, -np.inf, np.inf
    xa, al = k.alloc(x), k.alloc(alpha)
    ya = k.zeros(x.size)
    assert k.run("prelu", (xa, ya, al, 4, 7), "generic") == 0
    check(k.read(ya, (4, 7)), ko.prelu(x, alpha))
    assert k.run("prelu", (xa, xa, al, 4, 7), "generic") == 0
    check(k.read(xa, (4, 7)), ko.prelu(x, alpha))


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 6, 1), (1, 1, 1), (0, 3, 2)])
def test_affine(k, shape):
    rng = np.random.default_rng(sum(shape))
    x, scale, shift = rand(rng, *shape), rand(rng, shape[1]), rand(rng, shape[1])
    xa, sa, ha = k.alloc(x), k.alloc(scale), k.alloc(shift)
    ya = k.zeros(x.size)
    assert k.run("affine", (xa, ya, sa, ha, *shape), "generic") == 0
    check(k.read(ya, shape), ko.affine(x, scale, shift))
    assert k.run("affine", (xa, xa, sa, ha, *shape), "generic") == 0
    check(k.read(xa, shape), ko.affine(x, scale, shift))


@pytest.mark.parametrize("gamma_beta", [(True, True), (False, False), (True, False), (False, True)])
def test_layernorm(k, gamma_beta):
    rng = np.random.default_rng(17)
    rows, size = 5, 9
    x = rand(rng, rows, size, scale=3.0) + 2
    x[1, 4] = np.nan  # poisons its row only
    gamma = rand(rng, size) if gamma_beta[0] else None
    beta = rand(rng, size) if gamma_beta[1] else None
    xa = k.alloc(x)
    ga = 0 if gamma is None else k.alloc(gamma)
    ba = 0 if beta is None else k.alloc(beta)
    ya = k.zeros(x.size)
    assert k.run("layernorm", (xa, ya, ga, ba, rows, size, 1e-3), "generic") == 0
    with np.errstate(invalid="ignore"):
        want = ko.layernorm(x, gamma, beta, 1e-3)
    check(k.read(ya, x.shape), want)
    assert k.run("layernorm", (xa, xa, ga, ba, rows, size, 1e-3), "generic") == 0
    check(k.read(xa, x.shape), want)
    assert k.run("layernorm", (xa, ya, ga, ba, 0, size, 1e-3), "generic") == 0


@pytest.mark.parametrize("target", ["new", "a", "b"])
@pytest.mark.parametrize("op", abi.BINARY)
def test_binary(k, op, target):
    rng = np.random.default_rng(abi.BINARY_CODES[op])
    a, b = rand(rng, 23), rand(rng, 23)
    a[3], b[5], a[7], b[7], a[9], b[11] = np.nan, np.nan, np.inf, -np.inf, -np.inf, np.inf
    aa, ba = k.alloc(a), k.alloc(b)
    ya = {"new": k.zeros(23), "a": aa, "b": ba}[target]
    assert k.run("binary", (aa, ba, ya, 23, abi.BINARY_CODES[op]), "generic") == 0
    with np.errstate(invalid="ignore"):
        check(k.read(ya, (23,)), ko.binary(a, b, op))


def copy_oracle(src, dst, outer, mid, inner, so, sm, do, dm, src_base, dst_base):
    out = dst.copy()
    for o in range(outer):
        for j in range(mid):
            for i in range(inner):
                out[dst_base + o * do + j * dm + i] = src[src_base + o * so + j * sm + i]
    return out


COPY_CASES = [
    # outer, mid, inner, src_outer, src_mid, dst_outer, dst_mid, src_base, dst_base
    (2, 3, 4, 12, 4, 24, 8, 0, 0),  # concat into a wider row
    (3, 2, 5, 0, 5, 10, 5, 0, 0),  # stride 0 repeats
    (1, 4, 3, -3, -3, 0, 3, 9, 0),  # negative mid stride reverses
    (2, 2, 70, 140, 70, 280, 140, 0, 3),  # long rows
    (0, 2, 3, 6, 3, 6, 3, 0, 0),
]


@pytest.mark.parametrize("case", COPY_CASES)
def test_copy(k, case):
    outer, mid, inner, so, sm, do, dm, sb, db = case
    rng = np.random.default_rng(inner)
    src = rand(rng, 600)
    dst = np.full(700, -7.0, np.float32)
    sa, da = k.alloc(src), k.alloc(dst)
    args = (sa + 4 * sb, da + 4 * db, outer, mid, inner, so, sm, do, dm)
    assert k.run("copy", args, "generic") == 0
    check(k.read(da, (700,)), copy_oracle(src, dst, outer, mid, inner, so, sm, do, dm, sb, db))


PERMUTE_CASES = [((2, 3, 4), (0, 2, 1)), ((2, 3, 4, 5), (3, 1, 0, 2)), ((5,), (0,)), ((1, 4, 1, 3), (2, 3, 1, 0))]


@pytest.mark.parametrize("batch", [0, 1, 3])
@pytest.mark.parametrize("case", PERMUTE_CASES, ids=[str(c) for c in PERMUTE_CASES])
def test_permute(k, case, batch):
    dims, perm = case
    rng = np.random.default_rng(len(dims) + batch)
    x = rand(rng, batch, *dims)
    want = np.transpose(x, (0, *[p + 1 for p in perm]))
    strides = [int(np.prod(dims[i + 1:])) for i in range(len(dims))]
    out_dims = [dims[p] for p in perm] + [1] * (4 - len(dims))
    out_strides = [strides[p] for p in perm] + [0] * (4 - len(dims))
    xa, ya = k.alloc(x), k.zeros(x.size)
    assert k.run("permute", (xa, ya, batch, *out_dims, *out_strides), "generic") == 0
    check(k.read(ya, want.shape), want)


def test_embedding(k):
    rng = np.random.default_rng(21)
    vocab, dim = 40, 8
    table = rand(rng, vocab, dim)
    ids = rng.integers(0, vocab, 33).astype(np.int32)
    ids[0], ids[-1] = 0, vocab - 1
    ta, ia, ya = k.alloc(table), k.alloc(ids), k.zeros(33 * dim)
    assert k.run("embedding", (ia, ta, ya, 33, vocab, dim), "generic") == 0
    check(k.read(ya, (33, dim)), ko.embedding(ids, table))
    assert k.run("embedding", (ia, ta, ya, 0, vocab, dim), "generic") == 0


@pytest.mark.parametrize("bad", [-1, 40, 1 << 30])
def test_embedding_out_of_range_returns_one_plus_its_index(k, bad):
    rng = np.random.default_rng(22)
    table = rand(rng, 40, 3)
    ids = np.array([1, 5, 39, bad, 2, 7], np.int32)
    ta, ia, ya = k.alloc(table), k.alloc(ids), k.zeros(6 * 3, 55.0)
    assert k.run("embedding", (ia, ta, ya, 6, 40, 3), "generic") == 4
    got = k.read(ya, (6, 3))
    check(got[:3], ko.embedding(ids[:3], table))
    assert (got[4:] == 55.0).all()  # nothing written past the bad id


# ---------------------------------------------------------------------------------------------- rnn
RNN_CASES = [
    # cell, batch, steps, in_dim, units, flags, act, rec_act, recurrent bias
    ("simple", 2, 5, 3, 4, 0, "tanh", "sigmoid", True),
    ("simple", 1, 3, 1, 9, abi.RNN_RETURN_SEQUENCES | abi.RNN_GO_BACKWARDS, "relu", "sigmoid", False),
    ("lstm", 2, 6, 2, 5, 0, "tanh", "sigmoid", True),
    ("lstm", 1, 4, 3, 8, abi.RNN_RETURN_SEQUENCES, "tanh", "hard_sigmoid", False),
    ("lstm", 2, 3, 1, 1, abi.RNN_GO_BACKWARDS, "relu", "sigmoid", False),
    ("gru", 2, 5, 2, 6, 0, "tanh", "sigmoid", False),
    ("gru", 1, 4, 3, 9, abi.RNN_RESET_AFTER | abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid", True),
    ("gru", 2, 3, 2, 3, abi.RNN_RESET_AFTER | abi.RNN_GO_BACKWARDS, "softsign", "hard_sigmoid_k3", True),
    ("gru", 1, 1, 1, 2, abi.RNN_GO_BACKWARDS | abi.RNN_RETURN_SEQUENCES, "linear", "sigmoid", False),
    ("lstm", 0, 4, 2, 3, 0, "tanh", "sigmoid", False),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", RNN_CASES,
                         ids=[f"{c[0]}_b{c[1]}t{c[2]}d{c[3]}u{c[4]}f{c[5]}_{c[6]}" for c in RNN_CASES])
def test_rnn(k, variant, case):
    cell, batch, steps, in_dim, units, flags, act, rec_act, with_rbias = case
    gates = abi.GATES[cell]
    rng = np.random.default_rng(seed(case))
    x = rand(rng, batch, steps, in_dim)
    kernel, recurrent = rand(rng, in_dim, gates * units, scale=0.6), rand(rng, units, gates * units, scale=0.6)
    bias = rand(rng, gates * units)
    rbias = rand(rng, gates * units) if with_rbias else None
    wk, wr = ko.pack_rnn(kernel, recurrent, bias, rbias, gates)
    xa, ka, ra = k.alloc(x), k.alloc(wk), k.alloc(wr)
    seq = flags & abi.RNN_RETURN_SEQUENCES
    out_shape = (batch, steps, units) if seq else (batch, units)
    ya = k.zeros(math.prod(out_shape), np.nan)
    scratch = k.zeros(abi.rnn_scratch_per_row(cell, steps, units) * max(batch, 1))
    args = (abi.CELL_CODES[cell], xa, ka, ra, ya, scratch, batch, steps, in_dim, units, flags,
            abi.UNARY_CODES[act], abi.UNARY_CODES[rec_act])
    assert k.run("rnn", args, variant) == 0
    want = ko.rnn(cell, x, kernel, recurrent, bias, rbias, flags, act, rec_act)
    check(k.read(ya, out_shape), want)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cell", abi.CELLS)
def test_rnn_nan_input_poisons_the_state_from_its_step_on(k, variant, cell):
    gates, units, steps = abi.GATES[cell], 3, 5
    rng = np.random.default_rng(abi.CELL_CODES[cell])
    x = rand(rng, 2, steps, 2)
    x[0, 2, 1] = np.nan
    x[1, 3, 0] = np.inf
    kernel, recurrent, bias = rand(rng, 2, gates * units), rand(rng, units, gates * units), rand(rng, gates * units)
    wk, wr = ko.pack_rnn(kernel, recurrent, bias, None, gates)
    xa, ka, ra = k.alloc(x), k.alloc(wk), k.alloc(wr)
    ya = k.zeros(2 * steps * units)
    scratch = k.zeros(abi.rnn_scratch_per_row(cell, steps, units) * 2)
    flags = abi.RNN_RETURN_SEQUENCES
    args = (abi.CELL_CODES[cell], xa, ka, ra, ya, scratch, 2, steps, 2, units, flags, abi.UNARY_CODES["tanh"],
            abi.UNARY_CODES["sigmoid"])
    assert k.run("rnn", args, variant) == 0
    with np.errstate(invalid="ignore"):
        want = ko.rnn(cell, x, kernel, recurrent, bias, None, flags, "tanh", "sigmoid")
    assert np.isnan(want[0, 2:]).all()
    check(k.read(ya, (2, steps, units)), want)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rnn_specialized_for_other_steps_and_batch(k, variant):
    rng = np.random.default_rng(31)
    units, in_dim = 4, 2
    kernel, recurrent, bias = rand(rng, in_dim, 16), rand(rng, units, 16), rand(rng, 16)
    wk, wr = ko.pack_rnn(kernel, recurrent, bias, None, 4)
    ka, ra = k.alloc(wk), k.alloc(wr)
    x1, x2 = rand(rng, 1, 2, in_dim), rand(rng, 3, 7, in_dim)
    a1, a2 = k.alloc(x1), k.alloc(x2)
    y1, y2 = k.zeros(units), k.zeros(3 * units)
    scratch = k.zeros(abi.rnn_scratch_per_row("lstm", 7, units) * 3)
    code = abi.CELL_CODES["lstm"], abi.UNARY_CODES["tanh"], abi.UNARY_CODES["sigmoid"]
    first = (code[0], a1, ka, ra, y1, scratch, 1, 2, in_dim, units, 0, code[1], code[2])
    second = (code[0], a2, ka, ra, y2, scratch, 3, 7, in_dim, units, 0, code[1], code[2])
    if variant == "special":
        assert k.specialize("rnn", first)
        assert k.call_special(second) == 0
    else:
        assert k.run("rnn", second, variant) == 0
    check(k.read(y2, (3, units)), ko.rnn("lstm", x2, kernel, recurrent, bias, None, 0, "tanh", "sigmoid"))


# ---------------------------------------------------------------------------------------------- heap growth
def test_set_heap_replaces_the_views_for_generic_and_specialized_kernels(k):
    rng = np.random.default_rng(41)
    kk, n = 6, 5
    kernel, bias = rand(rng, kk, n), rand(rng, n)
    x = rand(rng, 3, kk)
    xa, wa, ya = k.alloc(x), k.alloc(abi.pack_dense(kernel, bias)), k.zeros(3 * n)
    assert k.specialize("dense", (xa, wa, ya, 3, kk, n, 0.0, INF))
    old = HEAP_BYTES
    try:
        # Grow: a bigger buffer, old contents copied at the same addresses, then setHeap.
        k.engine.eval(
            f"(function(){{ var nb = new ArrayBuffer({2 * old}); new Uint8Array(nb).set(new Uint8Array(__kk.heap));"
            " __kk.heap = nb; return __kk.k.setHeap(nb); })()"
        )
        k.kr.limit = 2 * old
        k.kr.next = old + 64  # new buffers past the old end
        x2 = rand(rng, 4, kk)
        xb, yb = k.alloc(x2), k.zeros(4 * n)
        assert xb >= old
        assert k.call_special((xb, wa, yb, 4, kk, n, 0.0, INF)) == 0
        check(k.read(yb, (4, n)), ko.dense(x2, kernel, bias, 0.0, INF))
        yc = k.zeros(4 * n)
        assert k.run("dense", (xb, wa, yc, 4, kk, n, 0.0, INF), "generic") == 0
        check(k.read(yc, (4, n)), ko.dense(x2, kernel, bias, 0.0, INF))
        # Stale views would still see the old buffer: a kernel reading the first input must see it.
        assert k.run("dense", (xa, wa, ya, 3, kk, n, -INF, INF), "generic") == 0
        check(k.read(ya, (3, n)), ko.dense(x, kernel, bias, -INF, INF))
    finally:
        k.engine.eval(f"(function(){{ var nb = __kk.heap.slice(0, {old}); __kk.heap = nb;"
                      " return __kk.k.setHeap(nb); })()")
        k.kr.limit = old


def test_the_file_defines_its_namespace_when_missing():
    backend = "duktape" if "duktape" in BACKENDS else BACKENDS[0]
    source = (COMPILED / "kernels_es5.js").read_text(encoding="utf-8")
    with create_engine(backend) as engine:
        # One crossing: the engine's own shims need __jsml back before the call returns.
        engine.exec("var __kt_g = Function('return this')(), __kt_saved = __kt_g.__jsml; __kt_g.__jsml = undefined;\n"
                    + source + "\n;var __kt_made = typeof __jsml.es5Kernels.create + (__jsml !== __kt_saved);"
                    " __kt_g.__jsml = __kt_saved;")
        assert engine.eval("__kt_made") == "functiontrue"


NODE_MODULES = COMPILED.parent / "js" / "node_modules"
ACORN_CHECK = r"""
const acorn = require(process.argv[1] + '/acorn'), fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
acorn.parse(src, { ecmaVersion: 5, sourceType: 'script' });
global.__jsml = {};
(0, eval)(src);
const heap = new ArrayBuffer(1 << 20), ks = __jsml.es5Kernels.create(heap);
new Float32Array(heap).fill(0.5);
const made = [
  ['dense', [0, 64, 0, 3, 70, 9, 0, Infinity]],
  ['conv2d', [0, 64, 0, 0, 1, 8, 8, 2, 3, 3, 4, 1, 1, 1, 1, 1, 1, 8, 8, -Infinity, Infinity]],
  ['conv2d', [0, 64, 0, 0, 1, 30, 30, 1, 3, 3, 2, 1, 1, 1, 1, 1, 1, 30, 30, 0, 6]],
  ['depthwise2d', [0, 64, 0, 1, 8, 8, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 8, 8, 0, 6]],
  ['pool2d', [0, 64, 1, 8, 8, 2, 3, 3, 2, 2, 1, 1, 4, 4, 0]],
  ['pool2d', [0, 64, 1, 8, 8, 2, 3, 3, 2, 2, 1, 1, 4, 4, 1]],
  ['rnn', [0, 0, 64, 4096, 0, 0, 1, 3, 2, 5, 3, 8, 5]],
  ['rnn', [1, 0, 64, 4096, 0, 0, 1, 3, 2, 5, 0, 8, 5]],
  ['rnn', [2, 0, 64, 4096, 0, 0, 1, 3, 2, 5, 4, 8, 5]],
  ['rnn', [2, 0, 64, 4096, 0, 0, 1, 3, 2, 5, 0, 12, 6]],
].map(([name, args]) => ks.specialize(name, args));
made.forEach((f, i) => {
  if (!f) { throw new Error('specialize declined case ' + i); }
  acorn.parse('(' + f.toString() + ')', { ecmaVersion: 5, sourceType: 'script' });
});
console.log('ok ' + made.length);
"""


@pytest.mark.skipif(shutil.which("node") is None or not (NODE_MODULES / "acorn").is_dir(),
                    reason="needs node and acorn (jsengine_ml/js/node_modules)")
def test_source_and_generated_code_parse_as_es5():
    """Stricter than running on Duktape (which accepts a few ES2015 forms): acorn with ecmaVersion 5."""
    out = subprocess.run(["node", "-e", ACORN_CHECK, str(NODE_MODULES), str(COMPILED / "kernels_es5.js")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok 10"
