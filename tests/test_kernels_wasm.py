"""The WebAssembly kernel sets (jsengine_ml/compiled/kernels.wasm and kernels_relaxed.wasm) against the
numpy oracles.

Every kernel of abi.KERNELS runs in V8 (mini-racer) through tests/kernelkit.py on seeded random
data, edge shapes and NaN / +-inf inputs, and is compared with tests/kernel_oracle.py (float64).
Outputs are written between guard zones, so a kernel writing outside its output fails too. Every
test that runs a kernel runs once per module: the relaxed-SIMD build fuses the multiply-adds (FMA),
which rounds differently but must meet the same tolerances.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("py_mini_racer")
# The float64 oracles meet NaN and inf inputs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

import kernel_oracle as oracle  # noqa: E402
from kernelkit import COMPILED, KernelRunner  # noqa: E402

from jsengine_ml.backends import create_engine  # noqa: E402
from jsengine_ml.compiled import abi  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INF = math.inf
ATOL = 1e-5
RTOL = 1e-5
SENTINEL = -7777.0
GUARD = 8  # floats of guard zone on each side of an output (32 bytes keeps 16-byte alignment)


MODULES = ("kernels.wasm", "kernels_relaxed.wasm")
HEAP_BYTES = 64 << 20

# A minimal module with one f32x4.relaxed_madd: WebAssembly.validate(RELAXED_SIMD_PROBE) tells whether
# an engine can run kernels_relaxed.wasm (what an executor checks before choosing it).
RELAXED_SIMD_PROBE = bytes.fromhex(
    "0061736d01000000"  # magic, version 1
    "01080160037b7b7b017b"  # type section: (v128, v128, v128) -> v128
    "03020100"  # function section: one function of type 0
    "0a0d010b00200020012002fd85020b"  # code: local.get 0 1 2; f32x4.relaxed_madd; end
)


# ---------------------------------------------------------------------------------------------- harness
@pytest.fixture(scope="module", params=MODULES)
def runner(request):
    engine = create_engine("v8")
    try:
        kr = KernelRunner(engine, "wasm", heap_bytes=HEAP_BYTES, module=request.param)
        kr.module = request.param
        kr.base = kr.next
        yield kr
    finally:
        engine.close()


@pytest.fixture
def kr(runner):
    runner.next = runner.base  # every test starts with an empty heap
    return runner


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


class Out:
    """An output buffer of ``count`` floats, pre-filled with a sentinel, between two guard zones."""

    def __init__(self, kr: KernelRunner, shape: tuple[int, ...], fill: np.ndarray | None = None):
        self.kr = kr
        self.shape = tuple(shape)
        self.count = int(np.prod(self.shape))
        data = np.full(self.count + 2 * GUARD, SENTINEL, dtype=np.float32)
        if fill is not None:
            data[GUARD : GUARD + self.count] = np.asarray(fill, np.float32).reshape(-1)
        self.base = kr.alloc(data)
        self.addr = self.base + 4 * GUARD

    def read(self) -> np.ndarray:
        data = self.kr.read(self.base, (self.count + 2 * GUARD,))
        assert (data[:GUARD] == SENTINEL).all(), "kernel wrote before its output"
        assert (data[GUARD + self.count :] == SENTINEL).all(), "kernel wrote past its output"
        return data[GUARD : GUARD + self.count].reshape(self.shape)


def call(kr: KernelRunner, name: str, *args: float) -> None:
    status = kr.call(name, *args)
    assert status == 0, f"{name} returned status {status}"


def assert_close(out: np.ndarray, ref: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> None:
    """``out`` (float32 from the kernel) against the float64 oracle rounded to float32 (so a result
    past float32's range is +-inf); NaN positions must match exactly."""
    out = np.asarray(out, np.float64)
    with np.errstate(over="ignore"):
        ref = np.asarray(ref, np.float64).astype(np.float32).astype(np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    nan_out, nan_ref = np.isnan(out), np.isnan(ref)
    if not np.array_equal(nan_out, nan_ref):
        where = np.argwhere(nan_out != nan_ref)[:5].tolist()
        pytest.fail(f"NaN positions differ at {where}: got {out[nan_out != nan_ref][:5]}, "
                    f"want {ref[nan_out != nan_ref][:5]}")
    np.testing.assert_allclose(out[~nan_ref], ref[~nan_ref], atol=atol, rtol=rtol)


def same_pads(size: int, k: int, stride: int, dil: int = 1) -> tuple[int, int]:
    """(out, pad_before) of TensorFlow's padding="same"."""
    out = -(-size // stride)
    eff = (k - 1) * dil + 1
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


def valid_out(size: int, k: int, stride: int, dil: int = 1) -> int:
    return (size - ((k - 1) * dil + 1)) // stride + 1


# ---------------------------------------------------------------------------------------------- module
def test_exports_match_abi(kr):
    info = kr.engine.eval(
        "(function () { var m = new WebAssembly.Module(__kk_bytes); var e = {};"
        " WebAssembly.Module.exports(m).forEach(function (x) { e[x.name] = x.kind; });"
        " var a = {}; Object.keys(__kk.k).forEach(function (n) {"
        "   if (typeof __kk.k[n] === 'function') { a[n] = __kk.k[n].length; } });"
        " return JSON.stringify({exports: e, arity: a, imports: WebAssembly.Module.imports(m)}); })()"
    )
    info = json.loads(info)
    functions = {name for name, kind in info["exports"].items() if kind == "function"}
    assert functions == set(abi.KERNELS)
    assert info["exports"].get("__heap_base") == "global"
    assert set(info["exports"]) == set(abi.KERNELS) | {"__heap_base"}
    assert info["imports"] == [{"module": "env", "name": "memory", "kind": "memory"}]
    for name, args in abi.KERNELS.items():
        assert info["arity"][name] == len(args), name


def test_modules_differ_by_relaxed_simd(kr):
    """kernels_relaxed.wasm holds f32x4.relaxed_madd (0xfd 0x85 0x02); the probe validates in V8 and
    is what the relaxed module needs (a copy with the opcode changed to a reserved one does not)."""
    data = (COMPILED / kr.module).read_bytes()
    relaxed_madd = bytes.fromhex("fd8502")
    if kr.module == "kernels_relaxed.wasm":
        assert data.count(relaxed_madd) >= 8
    reserved = RELAXED_SIMD_PROBE.replace(relaxed_madd, bytes.fromhex("fdff03"))
    for probe, valid in ((RELAXED_SIMD_PROBE, True), (reserved, False)):
        kr.engine.put_array("__kk_probe", np.frombuffer(probe, dtype=np.uint8))
        assert kr.engine.eval("WebAssembly.validate(__kk_probe)") is valid
    assert kr.engine.eval("WebAssembly.validate(__kk_bytes)") is True


def test_header_is_generated_from_abi():
    assert (COMPILED / "wasm" / "abi.h").read_text(encoding="utf-8") == abi.header()


def test_build_check():
    """kernels.wasm, kernels_relaxed.wasm and wasm/abi.h are what scripts/build_wasm.py builds from the
    sources (a different ziglang version fails here with the pip command that installs the pinned one)."""
    try:
        importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('ziglang is not installed, so kernels.wasm cannot be rebuilt: pip install "ziglang==0.17.1"')
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_wasm.py"), "--check"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- dense
DENSE_SHAPES = [
    (0, 5, 3), (1, 1, 1), (1, 13, 64), (2, 3, 8), (3, 7, 9), (4, 8, 8), (5, 4, 16), (6, 1, 7),
    (7, 13, 64), (9, 17, 3), (13, 33, 20), (33, 64, 3), (4, 0, 5), (10, 5, 1), (11, 12, 15),
    (9, 200, 200),  # weights larger than one cache block of panels
    (1000, 13, 64),
    # a last panel of at most 4 columns (k >= 8) goes through the dot-product kernels
    (7, 8, 1), (6, 9, 2), (5, 40, 4), (17, 64, 12), (50, 256, 10), (11, 30, 3),
    (3, 2000, 3),  # too many weights to transpose on the stack: panel kernel
    # k <= 16: tiles of 4 rows copied to a static buffer, one kernel per k
    (8, 16, 16), (9, 15, 8), (12, 14, 5), (4, 11, 9), (5, 6, 24), (4, 2, 3), (6, 1, 17),
]
CLAMPS = [(-INF, INF), (0.0, INF), (0.0, 6.0), (-0.5, 0.5)]


@pytest.mark.parametrize("m,k,n", DENSE_SHAPES)
def test_dense(kr, m, k, n):
    rng = rng_for("dense", m, k, n)
    for i, (lo, hi) in enumerate(CLAMPS):
        x = f32(rng.standard_normal((m, k)))
        kernel = f32(rng.standard_normal((k, n)) / max(math.sqrt(k), 1))
        bias = None if i == 1 else f32(rng.standard_normal(n))
        y = Out(kr, (m, n))
        call(kr, "dense", kr.alloc(x), kr.alloc(abi.pack_dense(kernel, bias)), y.addr, m, k, n, lo, hi)
        assert_close(y.read(), oracle.dense(x, kernel, bias, lo, hi))


@pytest.mark.parametrize("n", [13, 3, 10])
@pytest.mark.parametrize("lo,hi", [(-INF, INF), (0.0, INF)])
def test_dense_nan_inf(kr, lo, hi, n):
    rng = rng_for("dense-nan", lo, n)
    m, k = 11, 10
    x = f32(rng.standard_normal((m, k)))
    x[1, 3] = np.nan
    x[4, 0] = np.inf
    x[6, 9] = -np.inf
    x[8, 2] = np.inf
    x[8, 5] = -np.inf  # +inf and -inf in one row: NaN wherever both weights are nonzero
    kernel = f32(rng.standard_normal((k, n)))
    kernel[0, 0] = abs(kernel[0, 0]) + 0.5  # x[4, 0] = +inf gives +inf in column 0
    bias = f32(rng.standard_normal(n))
    y = Out(kr, (m, n))
    call(kr, "dense", kr.alloc(x), kr.alloc(abi.pack_dense(kernel, bias)), y.addr, m, k, n, lo, hi)
    out = y.read()
    ref = oracle.dense(x, kernel, bias, lo, hi)
    assert np.isnan(ref[1]).all() and np.isinf(ref[4]).any()
    assert_close(out, ref)


# ---------------------------------------------------------------------------------------------- conv2d
# (batch, in_h, in_w, in_c, k_h, k_w, out_c, stride, dil, padding)
CONV_CASES = [
    (3, 8, 8, 1, 3, 3, 8, (1, 1), (1, 1), "same"),  # digits CNN, first layer
    (2, 4, 4, 8, 3, 3, 16, (1, 1), (1, 1), "same"),  # digits CNN, second layer
    (2, 7, 9, 3, 3, 3, 5, (2, 2), (1, 1), "valid"),
    (2, 8, 10, 3, 3, 2, 6, (2, 3), (1, 1), "same"),  # asymmetric same padding
    (1, 9, 9, 2, 3, 3, 4, (1, 1), (2, 2), "same"),  # dilation
    (1, 10, 7, 4, 2, 3, 9, (1, 1), (2, 1), "valid"),
    (3, 5, 5, 6, 1, 1, 7, (1, 1), (1, 1), "valid"),  # pointwise (no im2col)
    (2, 6, 6, 5, 1, 1, 3, (2, 2), (1, 1), "valid"),  # 1x1 with stride
    (2, 1, 20, 3, 1, 5, 4, (1, 1), (1, 1), "same"),  # Conv1D
    (2, 1, 17, 2, 1, 3, 8, (1, 2), (1, 3), "valid"),  # Conv1D, stride and dilation
    (1, 3, 3, 2, 5, 5, 3, (1, 1), (1, 1), "same"),  # kernel larger than the input
    (1, 6, 6, 13, 3, 3, 17, (1, 1), (1, 1), "same"),
    (0, 4, 4, 2, 3, 3, 2, (1, 1), (1, 1), "same"),  # empty batch
    # few channels and out_h*out_w % 4 == 0 take the transposed im2col; the others the row-major one
    (2, 8, 8, 1, 3, 3, 6, (2, 2), (1, 1), "same"),
    (1, 8, 8, 1, 5, 5, 20, (1, 1), (1, 1), "same"),
    (1, 8, 8, 2, 3, 3, 11, (1, 1), (2, 2), "valid"),
    (2, 5, 7, 1, 3, 3, 4, (1, 1), (1, 1), "same"),
    (1, 9, 9, 1, 3, 3, 9, (2, 2), (1, 1), "same"),
    # the direct convolution: batch remainders, several blocks of samples, several runs of pixels
    (5, 6, 6, 1, 3, 3, 8, (1, 1), (1, 1), "same"),
    (6, 4, 4, 8, 3, 3, 16, (1, 1), (1, 1), "same"),
    (70, 8, 8, 1, 3, 3, 8, (1, 1), (1, 1), "same"),
    (2, 12, 12, 2, 5, 3, 4, (1, 1), (1, 1), "same"),
    (2, 1, 300, 1, 1, 3, 5, (1, 1), (1, 1), "same"),
    (3, 7, 7, 3, 3, 3, 6, (2, 2), (2, 2), "same"),
    (1, 20, 20, 1, 17, 17, 3, (1, 1), (1, 2), "same"),  # 289 taps a pixel: the im2col fallback
]


def conv_geometry(in_h, in_w, k_h, k_w, stride, dil, padding):
    if padding == "same":
        out_h, pad_top = same_pads(in_h, k_h, stride[0], dil[0])
        out_w, pad_left = same_pads(in_w, k_w, stride[1], dil[1])
    else:
        out_h, out_w = valid_out(in_h, k_h, stride[0], dil[0]), valid_out(in_w, k_w, stride[1], dil[1])
        pad_top = pad_left = 0
    return out_h, out_w, pad_top, pad_left


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d(kr, case):
    batch, in_h, in_w, in_c, k_h, k_w, out_c, stride, dil, padding = case
    rng = rng_for("conv", case)
    out_h, out_w, pad_top, pad_left = conv_geometry(in_h, in_w, k_h, k_w, stride, dil, padding)
    for lo, hi in [(-INF, INF), (0.0, INF)]:
        x = f32(rng.standard_normal((batch, in_h, in_w, in_c)))
        kernel = f32(rng.standard_normal((k_h, k_w, in_c, out_c)) / math.sqrt(k_h * k_w * in_c))
        bias = f32(rng.standard_normal(out_c))
        w = abi.pack_dense(kernel.reshape(k_h * k_w * in_c, out_c), bias)
        scratch = kr.alloc_zeros(max(out_h * out_w * k_h * k_w * in_c, 1))
        y = Out(kr, (batch, out_h, out_w, out_c))
        call(kr, "conv2d", kr.alloc(x), kr.alloc(w), y.addr, scratch, batch, in_h, in_w, in_c, k_h, k_w, out_c,
             stride[0], stride[1], dil[0], dil[1], pad_top, pad_left, out_h, out_w, lo, hi)
        ref = oracle.conv2d(x, kernel, bias, stride, dil, (pad_top, pad_left), (out_h, out_w), lo, hi)
        assert_close(y.read(), ref)


def test_conv2d_nan_inf(kr):
    rng = rng_for("conv-nan")
    batch, in_h, in_w, in_c, k_h, k_w, out_c = 2, 6, 6, 2, 3, 3, 9
    x = f32(rng.standard_normal((batch, in_h, in_w, in_c)))
    x[0, 1, 1, 0] = np.nan
    x[1, 4, 2, 1] = np.inf
    x[1, 0, 5, 0] = -np.inf
    kernel = f32(rng.standard_normal((k_h, k_w, in_c, out_c)))
    bias = f32(rng.standard_normal(out_c))
    out_h, pad = same_pads(in_h, k_h, 1)
    scratch = kr.alloc_zeros(out_h * out_h * k_h * k_w * in_c)
    y = Out(kr, (batch, out_h, out_h, out_c))
    call(kr, "conv2d", kr.alloc(x), kr.alloc(abi.pack_dense(kernel.reshape(-1, out_c), bias)), y.addr, scratch,
         batch, in_h, in_w, in_c, k_h, k_w, out_c, 1, 1, 1, 1, pad, pad, out_h, out_h, 0.0, INF)
    ref = oracle.conv2d(x, kernel, bias, (1, 1), (1, 1), (pad, pad), (out_h, out_h), 0.0, INF)
    assert np.isnan(ref).any() and np.isinf(ref).any()
    assert_close(y.read(), ref)


# ---------------------------------------------------------------------------------------------- depthwise2d
# (batch, in_h, in_w, in_c, k_h, k_w, mult, stride, dil, padding)
DEPTHWISE_CASES = [
    (2, 8, 8, 8, 3, 3, 1, (1, 1), (1, 1), "same"),
    (2, 7, 7, 5, 3, 3, 1, (2, 2), (1, 1), "same"),
    (1, 9, 8, 3, 3, 2, 2, (1, 2), (1, 1), "valid"),
    (2, 6, 6, 2, 3, 3, 4, (1, 1), (1, 1), "same"),
    (1, 10, 10, 3, 3, 3, 3, (2, 1), (2, 2), "same"),
    (1, 9, 9, 1, 5, 5, 1, (1, 1), (1, 1), "same"),
    (2, 1, 16, 6, 1, 3, 1, (1, 1), (1, 2), "valid"),  # DepthwiseConv1D
    (1, 5, 5, 9, 1, 1, 8, (1, 1), (1, 1), "valid"),
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=str)
def test_depthwise2d(kr, case):
    batch, in_h, in_w, in_c, k_h, k_w, mult, stride, dil, padding = case
    rng = rng_for("depthwise", case)
    out_h, out_w, pad_top, pad_left = conv_geometry(in_h, in_w, k_h, k_w, stride, dil, padding)
    for lo, hi in [(-INF, INF), (0.0, 6.0)]:
        x = f32(rng.standard_normal((batch, in_h, in_w, in_c)))
        x.reshape(-1)[:: max(x.size // 3, 1)] *= 10
        kernel = f32(rng.standard_normal((k_h, k_w, in_c, mult)))
        bias = f32(rng.standard_normal(in_c * mult))
        w = np.concatenate([bias, kernel.reshape(k_h * k_w, in_c * mult).reshape(-1)])
        y = Out(kr, (batch, out_h, out_w, in_c * mult))
        call(kr, "depthwise2d", kr.alloc(x), kr.alloc(w), y.addr, batch, in_h, in_w, in_c, k_h, k_w, mult,
             stride[0], stride[1], dil[0], dil[1], pad_top, pad_left, out_h, out_w, lo, hi)
        ref = oracle.depthwise2d(x, kernel, bias, stride, dil, (pad_top, pad_left), (out_h, out_w), lo, hi)
        assert_close(y.read(), ref)


def test_depthwise2d_nan(kr):
    rng = rng_for("depthwise-nan")
    x = f32(rng.standard_normal((1, 5, 5, 6)))
    x[0, 2, 2, 1] = np.nan
    x[0, 0, 4, 5] = np.inf
    kernel = f32(rng.standard_normal((3, 3, 6, 1)))
    bias = f32(rng.standard_normal(6))
    w = np.concatenate([bias, kernel.reshape(-1)])
    y = Out(kr, (1, 5, 5, 6))
    call(kr, "depthwise2d", kr.alloc(x), kr.alloc(w), y.addr, 1, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5, 5, 0.0, INF)
    ref = oracle.depthwise2d(x, kernel, bias, (1, 1), (1, 1), (1, 1), (5, 5), 0.0, INF)
    assert np.isnan(ref).any()
    assert_close(y.read(), ref)


# ---------------------------------------------------------------------------------------------- pooling
# (batch, in_h, in_w, c, k, stride, padding)
POOL_CASES = [
    (2, 8, 8, 3, (2, 2), (2, 2), "valid"),
    (2, 7, 7, 4, (2, 2), (2, 2), "same"),  # clipped windows at the bottom / right
    (1, 6, 9, 6, (3, 3), (2, 2), "same"),  # clipped on every side
    (1, 5, 5, 1, (3, 3), (1, 1), "same"),
    (2, 9, 9, 9, (2, 3), (3, 2), "valid"),  # stride larger than the window
    (1, 1, 12, 5, (1, 3), (1, 2), "same"),  # 1-D pooling
    (1, 4, 4, 8, (4, 4), (4, 4), "valid"),
    (1, 3, 3, 2, (5, 5), (1, 1), "same"),  # window larger than the input
    # 2 x 2 max windows over channels in f32x4: all samples in one run, one run a row
    (3, 8, 8, 8, (2, 2), (2, 2), "valid"),
    (2, 9, 9, 4, (2, 2), (3, 3), "valid"),
    (2, 7, 7, 4, (2, 2), (2, 2), "same"),
    (2, 9, 10, 8, (2, 2), (2, 2), "same"),
    (1, 5, 5, 4, (2, 2), (1, 1), "valid"),
    (2, 8, 8, 6, (2, 2), (2, 2), "valid"),
]


@pytest.mark.parametrize("mode", abi.POOL)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pool2d(kr, case, mode):
    batch, in_h, in_w, c, k, stride, padding = case
    rng = rng_for("pool", case, mode)
    out_h, out_w, pad_top, pad_left = conv_geometry(in_h, in_w, k[0], k[1], stride, (1, 1), padding)
    x = f32(rng.standard_normal((batch, in_h, in_w, c)))
    if mode == "max":
        x -= 5  # all negative: a clipped window must not see zeros from the padding
    y = Out(kr, (batch, out_h, out_w, c))
    call(kr, "pool2d", kr.alloc(x), y.addr, batch, in_h, in_w, c, k[0], k[1], stride[0], stride[1], pad_top,
         pad_left, out_h, out_w, abi.POOL_CODES[mode])
    assert_close(y.read(), oracle.pool2d(x, k, stride, (pad_top, pad_left), (out_h, out_w), mode))


@pytest.mark.parametrize("mode", abi.POOL)
def test_pool2d_nan_inf(kr, mode):
    rng = rng_for("pool-nan", mode)
    x = f32(rng.standard_normal((1, 6, 6, 5)))
    x[0, 0, 0, 0] = np.nan
    x[0, 3, 4, 2] = np.nan
    x[0, 5, 5, 4] = -np.inf
    x[0, 2, 2, 3] = np.inf
    out_h, pad = same_pads(6, 3, 2)
    y = Out(kr, (1, out_h, out_h, 5))
    call(kr, "pool2d", kr.alloc(x), y.addr, 1, 6, 6, 5, 3, 3, 2, 2, pad, pad, out_h, out_h, abi.POOL_CODES[mode])
    ref = oracle.pool2d(x, (3, 3), (2, 2), (pad, pad), (out_h, out_h), mode)
    assert np.isnan(ref).sum() >= 2
    assert_close(y.read(), ref)


@pytest.mark.parametrize("case", [(3, 8, 8, 8, "valid"), (2, 7, 7, 4, "same")], ids=str)
def test_pool2d_2x2_nan_inf(kr, case):
    batch, in_h, in_w, c, padding = case
    rng = rng_for("pool2x2-nan", case)
    x = f32(rng.standard_normal((batch, in_h, in_w, c)) - 5)
    x[0, 0, 0, 0] = np.nan  # first of its window
    x[0, 1, 1, 1] = np.nan  # last of its window
    x[0, 2, 3, 2] = np.nan
    x[1, 2, 3, 2] = np.inf
    x[1, 4, 4, 3] = -np.inf
    x[batch - 1, in_h - 1, in_w - 1, c - 1] = np.nan  # a clipped window at the bottom right for "same"
    out_h, out_w, pad_top, pad_left = conv_geometry(in_h, in_w, 2, 2, (2, 2), (1, 1), padding)
    y = Out(kr, (batch, out_h, out_w, c))
    call(kr, "pool2d", kr.alloc(x), y.addr, batch, in_h, in_w, c, 2, 2, 2, 2, pad_top, pad_left, out_h, out_w,
         abi.POOL_CODES["max"])
    ref = oracle.pool2d(x, (2, 2), (2, 2), (pad_top, pad_left), (out_h, out_w), "max")
    assert np.isnan(ref).sum() >= 4
    assert_close(y.read(), ref)


@pytest.mark.parametrize("mode", abi.POOL)
@pytest.mark.parametrize("batch,s,c", [(1, 1, 1), (2, 7, 5), (3, 16, 8), (2, 9, 13), (0, 3, 4)])
def test_global_pool(kr, mode, batch, s, c):
    rng = rng_for("global", mode, batch, s, c)
    x = f32(rng.standard_normal((batch, s, c)) - (3 if mode == "max" else 0))
    y = Out(kr, (batch, c))
    call(kr, "global_pool", kr.alloc(x), y.addr, batch, s, c, abi.POOL_CODES[mode])
    assert_close(y.read(), oracle.global_pool(x, mode))


@pytest.mark.parametrize("mode", abi.POOL)
def test_global_pool_nan_inf(kr, mode):
    x = f32(rng_for("global-nan", mode).standard_normal((3, 6, 7)))
    x[0, 2, 3] = np.nan
    x[1, 5, 6] = np.inf
    x[2, 0, 0] = -np.inf
    y = Out(kr, (3, 7))
    call(kr, "global_pool", kr.alloc(x), y.addr, 3, 6, 7, abi.POOL_CODES[mode])
    assert_close(y.read(), oracle.global_pool(x, mode))


# ---------------------------------------------------------------------------------------------- unary
UNARY_PARAMS = {
    "elu": [(1.0, 0.0), (0.5, 0.0)],
    "leaky_relu": [(0.2, 0.0)],
    "relu_clip": [(0.1, 6.0), (0.0, 1.0)],
    "scale": [(2.5, -1.0)],
    "thresholded_relu": [(1.0, 0.0), (-0.5, 0.0)],
}
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 0.5, -0.5, 0.49999997, 1.4142135,
            -1.4142135, 6.0, 20.0, -17.5, 44.0, -44.0, 87.3, -87.3, 88.0, -88.0, 88.7, -88.7, 88.8, -88.8, 89.5, -89.5,
            -103.9, -104.5, 1e20, -1e20, 3e38, -3e38]


def unary_inputs(rng: np.random.Generator) -> np.ndarray:
    return f32(np.concatenate([
        SPECIALS,
        np.linspace(-12, 12, 4001),
        np.linspace(-110, 110, 2201),
        rng.standard_normal(500) * 3,
        rng.uniform(-100, 100, 500),
        np.geomspace(1e-8, 1e3, 300) * rng.choice([-1, 1], 300),
    ]))


@pytest.mark.parametrize("kind", abi.UNARY)
def test_unary(kr, kind):
    rng = rng_for("unary", kind)
    x = unary_inputs(rng)
    xa = kr.alloc(x)
    for a, b in UNARY_PARAMS.get(kind, [(0.0, 0.0)]):
        y = Out(kr, x.shape)
        call(kr, "unary", xa, y.addr, x.size, abi.UNARY_CODES[kind], a, b)
        assert_close(y.read(), oracle.unary(x, kind, a, b))


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "gelu", "scale"])
def test_unary_tails_and_in_place(kr, kind):
    rng = rng_for("unary-tail", kind)
    for count in range(0, 14):
        x = f32(rng.standard_normal(count) * 4)
        y = Out(kr, (count,), fill=x)
        call(kr, "unary", y.addr, y.addr, count, abi.UNARY_CODES[kind], 1.5, 0.25)
        assert_close(y.read(), oracle.unary(x, kind, 1.5, 0.25))


def test_bad_arguments_return_a_status(kr):
    """Codes and sizes the doc does not allow give a nonzero status (not a trap, not a silent 0)."""
    buf = kr.alloc(np.ones(4096, np.float32))
    calls = [
        ("unary", buf, buf, 4, len(abi.UNARY), 0.0, 0.0),
        ("unary", buf, buf, -1, 0, 0.0, 0.0),
        ("binary", buf, buf, buf, 4, len(abi.BINARY)),
        ("pool2d", buf, buf, 1, 4, 4, 1, 2, 2, 2, 2, 0, 0, 2, 2, len(abi.POOL)),
        ("pool2d", buf, buf, 1, 4, 4, 1, 2, 2, 0, 2, 0, 0, 2, 2, 0),  # stride 0
        ("global_pool", buf, buf, 1, 4, 4, len(abi.POOL)),
        ("conv2d", buf, buf, buf, buf, 1, 4, 4, 1, 3, 3, 2, 1, 0, 1, 1, 1, 1, 4, 4, -INF, INF),  # stride 0
        ("depthwise2d", buf, buf, buf, 1, 4, 4, 1, 3, 3, 1, 1, 1, 0, 1, 1, 1, 4, 4, -INF, INF),  # dilation 0
        ("dense", buf, buf, buf, -1, 2, 2, -INF, INF),
        ("rnn", len(abi.CELLS), buf, buf, buf, buf, buf, 1, 1, 1, 1, 0, 8, 5),
        ("rnn", 0, buf, buf, buf, buf, buf, 1, 1, 1, 1, 0, len(abi.UNARY), 5),
    ]
    for name, *args in calls:
        assert kr.call(name, *args) != 0, (name, args)


# ---------------------------------------------------------------------------------------------- softmax
SOFTMAX_SHAPES = [(1, 1, 1), (3, 10, 1), (2, 7, 1), (4, 3, 5), (2, 9, 2), (1, 17, 3), (5, 4, 8), (2, 33, 1),
                  (3, 1, 6), (0, 4, 1),
                  # short rows go four at a time, the rest (and long rows) one at a time
                  (9, 3, 1), (8, 16, 1), (6, 17, 1), (13, 1, 1), (7, 5, 1),
                  # 2, 3 and 10 columns have their own code; rows read as vectors except the last group's
                  (13, 10, 1), (8, 10, 1), (4, 3, 1), (12, 3, 1), (17, 2, 1), (5, 2, 1), (9, 4, 1)]


@pytest.mark.parametrize("log", [0, 1])
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=str)
def test_softmax(kr, shape, log):
    rng = rng_for("softmax", shape, log)
    x = f32(rng.standard_normal(shape) * 5)
    if x.size:
        x.reshape(-1)[0] += 300  # max subtraction matters
    y = Out(kr, shape)
    call(kr, "softmax", kr.alloc(x), y.addr, *shape, log)
    assert_close(y.read(), oracle.softmax(x, bool(log)))
    # in place
    y = Out(kr, shape, fill=x)
    call(kr, "softmax", y.addr, y.addr, *shape, log)
    assert_close(y.read(), oracle.softmax(x, bool(log)))


@pytest.mark.parametrize("log", [0, 1])
@pytest.mark.parametrize("inner", [1, 3])
def test_softmax_nan_inf(kr, log, inner):
    x = f32(rng_for("softmax-nan", log, inner).standard_normal((5, 6, inner)))
    x[0, 2, 0] = np.nan
    x[1, 3, 0] = np.inf
    x[2, :, 0] = -np.inf
    x[3, 1, 0] = -np.inf
    x[4, :, 0] = -1e30
    y = Out(kr, x.shape)
    call(kr, "softmax", kr.alloc(x), y.addr, 5, 6, inner, log)
    with np.errstate(invalid="ignore"):
        ref = oracle.softmax(x, bool(log))
    assert_close(y.read(), ref)


@pytest.mark.parametrize("log", [0, 1])
@pytest.mark.parametrize("cols", [2, 3, 10])
def test_softmax_short_rows_nan_inf(kr, log, cols):
    x = f32(rng_for("softmax-short-nan", log, cols).standard_normal((14, cols, 1)) * 4)
    x[1, cols - 1, 0] = np.nan
    x[2, 0, 0] = np.inf
    x[5, :, 0] = -np.inf
    x[6, 1, 0] = -np.inf
    x[9, :, 0] = 1e30
    x[12, 0, 0] = np.nan  # in the last group of four
    y = Out(kr, x.shape)
    call(kr, "softmax", kr.alloc(x), y.addr, 14, cols, 1, log)
    with np.errstate(invalid="ignore"):
        ref = oracle.softmax(x, bool(log))
    assert_close(y.read(), ref)


# ------------------------------------------------------------------------------------- prelu, affine, layernorm
@pytest.mark.parametrize("rows,size", [(1, 1), (3, 5), (4, 8), (2, 13), (0, 3)])
def test_prelu(kr, rows, size):
    rng = rng_for("prelu", rows, size)
    x = f32(rng.standard_normal((rows, size)))
    if x.size:
        x.reshape(-1)[0] = np.nan
    alpha = f32(rng.standard_normal(size))
    y = Out(kr, (rows, size))
    call(kr, "prelu", kr.alloc(x), y.addr, kr.alloc(alpha), rows, size)
    assert_close(y.read(), oracle.prelu(x, alpha))
    y = Out(kr, (rows, size), fill=x)
    call(kr, "prelu", y.addr, y.addr, kr.alloc(alpha), rows, size)
    assert_close(y.read(), oracle.prelu(x, alpha))


@pytest.mark.parametrize("outer,c,inner", [(1, 1, 1), (5, 7, 1), (3, 8, 1), (2, 3, 5), (4, 2, 9), (2, 5, 4), (0, 3, 2)])
def test_affine(kr, outer, c, inner):
    rng = rng_for("affine", outer, c, inner)
    x = f32(rng.standard_normal((outer, c, inner)))
    scale, shift = f32(rng.standard_normal(c)), f32(rng.standard_normal(c))
    sa, ta = kr.alloc(scale), kr.alloc(shift)
    y = Out(kr, x.shape)
    call(kr, "affine", kr.alloc(x), y.addr, sa, ta, outer, c, inner)
    assert_close(y.read(), oracle.affine(x, scale, shift))
    y = Out(kr, x.shape, fill=x)
    call(kr, "affine", y.addr, y.addr, sa, ta, outer, c, inner)
    assert_close(y.read(), oracle.affine(x, scale, shift))


@pytest.mark.parametrize("rows,size", [(1, 1), (3, 3), (4, 4), (2, 7), (5, 64), (2, 100), (0, 5)])
@pytest.mark.parametrize("affine", ["none", "gamma", "beta", "both"])
def test_layernorm(kr, rows, size, affine):
    rng = rng_for("layernorm", rows, size, affine)
    x = f32(rng.standard_normal((rows, size)) * 3 + 50)
    gamma = f32(rng.standard_normal(size)) if affine in ("gamma", "both") else None
    beta = f32(rng.standard_normal(size)) if affine in ("beta", "both") else None
    eps = 1e-3
    ga = kr.alloc(gamma) if gamma is not None else 0
    ba = kr.alloc(beta) if beta is not None else 0
    y = Out(kr, x.shape)
    call(kr, "layernorm", kr.alloc(x), y.addr, ga, ba, rows, size, eps)
    ref = oracle.layernorm(x, gamma, beta, float(np.float32(eps)))
    assert_close(y.read(), ref, atol=2e-5)
    y = Out(kr, x.shape, fill=x)
    call(kr, "layernorm", y.addr, y.addr, ga, ba, rows, size, eps)
    assert_close(y.read(), ref, atol=2e-5)


def test_layernorm_nan(kr):
    x = f32(rng_for("ln-nan").standard_normal((3, 6)))
    x[1, 2] = np.nan
    y = Out(kr, x.shape)
    call(kr, "layernorm", kr.alloc(x), y.addr, 0, 0, 3, 6, 1e-5)
    assert_close(y.read(), oracle.layernorm(x, None, None, float(np.float32(1e-5))), atol=2e-5)


# ---------------------------------------------------------------------------------------------- binary
@pytest.mark.parametrize("op", abi.BINARY)
def test_binary(kr, op):
    rng = rng_for("binary", op)
    for count in [0, 1, 3, 4, 5, 8, 9, 17, 100]:
        a = f32(rng.standard_normal(count))
        b = f32(rng.standard_normal(count))
        if count >= 5:
            a[1], b[2], a[3], b[3], a[4] = np.nan, np.nan, np.inf, -np.inf, -np.inf
        ref = oracle.binary(a, b, op)
        aa, ba = kr.alloc(a), kr.alloc(b)
        y = Out(kr, (count,))
        call(kr, "binary", aa, ba, y.addr, count, abi.BINARY_CODES[op])
        assert_close(y.read(), ref)
        ya = Out(kr, (count,), fill=a)  # y is a
        call(kr, "binary", ya.addr, ba, ya.addr, count, abi.BINARY_CODES[op])
        assert_close(ya.read(), ref)
        yb = Out(kr, (count,), fill=b)  # y is b
        call(kr, "binary", aa, yb.addr, yb.addr, count, abi.BINARY_CODES[op])
        assert_close(yb.read(), ref)


# ---------------------------------------------------------------------------------------------- copy, permute
def copy_oracle(src: np.ndarray, src_off: int, dst: np.ndarray, dst_off: int, outer, mid, inner, so, sm, do, dm):
    out = dst.copy()
    for o in range(outer):
        for j in range(mid):
            for i in range(inner):
                out[dst_off + o * do + j * dm + i] = src[src_off + o * so + j * sm + i]
    return out


# (outer, mid, inner, src_outer, src_mid, dst_outer, dst_mid, src_offset, dst_offset)
COPY_CASES = [
    (1, 1, 1, 0, 0, 0, 0, 0, 0),
    (2, 3, 4, 12, 4, 12, 4, 0, 0),  # contiguous
    (3, 2, 5, 10, 5, 20, 5, 0, 0),  # into a wider row (concatenate)
    (3, 2, 5, 10, 5, 20, 5, 0, 10),  # second half of the concatenation
    (2, 4, 3, 20, 5, 12, 3, 1, 0),  # slice
    (2, 3, 1, 3, 1, 3, 1, 0, 0),
    (2, 5, 2, 10, -2, 10, 2, 8, 0),  # negative mid stride: reverse the rows
    (3, 4, 6, 0, 6, 24, 6, 0, 0),  # outer stride 0: repeat
    (2, 3, 9, 9, 0, 27, 9, 0, 0),  # mid stride 0: repeat
    (2, 7, 1, 1, 2, 7, 1, 0, 0),  # strided gather of single elements
    (0, 3, 3, 9, 3, 9, 3, 0, 0),
]


@pytest.mark.parametrize("case", COPY_CASES, ids=str)
def test_copy(kr, case):
    outer, mid, inner, so, sm, do, dm, src_off, dst_off = case
    rng = rng_for("copy", case)
    src = f32(rng.standard_normal(100))
    src[5] = np.nan
    dst_init = np.full(100, SENTINEL, np.float32)
    sa = kr.alloc(src)
    y = Out(kr, (100,), fill=dst_init)
    call(kr, "copy", sa + 4 * src_off, y.addr + 4 * dst_off, outer, mid, inner, so, sm, do, dm)
    ref = copy_oracle(src, src_off, dst_init, dst_off, outer, mid, inner, so, sm, do, dm)
    assert_close(y.read(), ref, atol=0, rtol=0)


def test_copy_bit_exact(kr):
    bits = np.array([0x7FC00001, 0xFFFFFFFF, 0x00000001, 0x80000000, 0x7F800000, 0x12345678, 0x7FA00000, 5],
                    dtype=np.uint32)
    src = kr.alloc(bits.view(np.int32))
    dst = kr.alloc_zeros(8, np.int32)
    call(kr, "copy", src, dst, 1, 1, 8, 0, 0, 0, 0)
    np.testing.assert_array_equal(kr.read(dst, (8,), np.int32).view(np.uint32), bits)


PERMUTE_CASES = [
    ((2, 3, 4), (1, 0)),
    ((3, 4, 5, 2), (2, 0, 1)),
    ((1, 6, 5, 3), (0, 2, 1)),
    ((4, 1, 7), (1, 0)),
    ((5, 9), (0,)),
    ((2, 2, 3, 4, 5), (3, 2, 1, 0)),
    ((2, 3, 4, 2, 3), (1, 3, 0, 2)),
    ((0, 2, 3), (1, 0)),
]


@pytest.mark.parametrize("dims,perm", PERMUTE_CASES, ids=str)
def test_permute(kr, dims, perm):
    """y[b] = x[b].transpose(perm) for a per-sample tensor of up to 4 dims (batch first in dims)."""
    rng = rng_for("permute", dims, perm)
    batch, sample = dims[0], dims[1:]
    x = f32(rng.standard_normal(dims))
    out_dims = [sample[p] for p in perm]
    strides = np.cumprod((1, *sample[::-1]))[:-1][::-1]  # element strides of the sample
    out_strides = [int(strides[p]) for p in perm]
    pad = 4 - len(out_dims)
    d = [*out_dims, *([1] * pad)]
    s = [*out_strides, *([0] * pad)]
    ref = x.transpose(0, *(p + 1 for p in perm))
    y = Out(kr, (batch, *out_dims))
    call(kr, "permute", kr.alloc(x), y.addr, batch, *d, *s)
    assert_close(y.read(), ref, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------- embedding
@pytest.mark.parametrize("count,vocab,dim", [(1, 1, 1), (7, 10, 3), (12, 50, 8), (5, 4, 13), (0, 5, 4)])
def test_embedding(kr, count, vocab, dim):
    rng = rng_for("embedding", count, vocab, dim)
    table = f32(rng.standard_normal((vocab, dim)))
    ids = rng.integers(0, vocab, count).astype(np.int32)
    if count:
        ids[-1] = vocab - 1
        ids[0] = 0
    y = Out(kr, (count, dim))
    call(kr, "embedding", kr.alloc(ids), kr.alloc(table), y.addr, count, vocab, dim)
    assert_close(y.read(), oracle.embedding(ids, table), atol=0, rtol=0)


@pytest.mark.parametrize("bad", [-1, 10, 11, -(2**31)])
def test_embedding_out_of_range(kr, bad):
    table = f32(rng_for("emb-bad").standard_normal((10, 5)))
    ids = np.array([3, 9, 0, bad, 4, bad], np.int32)
    y = Out(kr, (6, 5))
    status = kr.call("embedding", kr.alloc(ids), kr.alloc(table), y.addr, 6, 10, 5)
    assert status == 1 + 3
    out = y.read()
    assert_close(out[:3], oracle.embedding(ids[:3], table), atol=0, rtol=0)
    assert (out[3:] == SENTINEL).all(), "embedding wrote past the first bad id"


# ---------------------------------------------------------------------------------------------- rnn
RNN_CASES = [
    # cell, batch, steps, in_dim, units, flags, act, rec_act
    ("simple", 3, 4, 2, 5, 0, "tanh", "sigmoid"),
    ("simple", 5, 3, 3, 8, abi.RNN_RETURN_SEQUENCES, "relu", "sigmoid"),
    ("simple", 2, 5, 1, 1, abi.RNN_GO_BACKWARDS | abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid"),
    ("lstm", 3, 4, 2, 12, 0, "tanh", "sigmoid"),
    ("lstm", 6, 3, 5, 7, abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid"),
    ("lstm", 70, 3, 2, 9, abi.RNN_GO_BACKWARDS, "tanh", "hard_sigmoid"),  # more rows than one block
    ("lstm", 1, 1, 1, 1, abi.RNN_RETURN_SEQUENCES | abi.RNN_GO_BACKWARDS, "tanh", "sigmoid"),
    ("lstm", 4, 2, 3, 17, 0, "relu", "sigmoid"),
    ("gru", 3, 4, 2, 6, 0, "tanh", "sigmoid"),
    ("gru", 5, 3, 4, 8, abi.RNN_RESET_AFTER, "tanh", "sigmoid"),
    ("gru", 2, 5, 3, 11, abi.RNN_RESET_AFTER | abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid"),
    ("gru", 66, 3, 2, 5, abi.RNN_RESET_AFTER | abi.RNN_GO_BACKWARDS | abi.RNN_RETURN_SEQUENCES, "tanh",
     "hard_sigmoid"),
    ("gru", 7, 2, 1, 3, abi.RNN_GO_BACKWARDS | abi.RNN_RETURN_SEQUENCES, "linear", "sigmoid"),
    ("gru", 0, 3, 2, 4, abi.RNN_RESET_AFTER, "tanh", "sigmoid"),
    # wide enough that the weights of one step are split into several cache blocks of panels
    ("lstm", 3, 2, 4, 400, abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid"),
    ("gru", 2, 2, 3, 260, abi.RNN_RESET_AFTER, "tanh", "sigmoid"),
    ("gru", 2, 2, 3, 260, 0, "tanh", "sigmoid"),
]


@pytest.mark.parametrize("case", RNN_CASES, ids=str)
def test_rnn(kr, case):
    cell, batch, steps, in_dim, units, flags, act, rec_act = case
    rng = rng_for("rnn", case)
    gates = abi.GATES[cell]
    x = f32(rng.standard_normal((batch, steps, in_dim)))
    kernel = f32(rng.standard_normal((in_dim, gates * units)) * 0.6)
    recurrent = f32(rng.standard_normal((units, gates * units)) * 0.6 / math.sqrt(units))
    bias = f32(rng.standard_normal(gates * units) * 0.3)
    recurrent_bias = f32(rng.standard_normal(gates * units) * 0.3) if flags & abi.RNN_RESET_AFTER else None
    wk, wr = oracle.pack_rnn(kernel, recurrent, bias, recurrent_bias, gates)
    scratch = kr.alloc_zeros(max(abi.rnn_scratch_per_row(cell, steps, units) * batch, 1))
    shape = (batch, steps, units) if flags & abi.RNN_RETURN_SEQUENCES else (batch, units)
    y = Out(kr, shape)
    call(kr, "rnn", abi.CELL_CODES[cell], kr.alloc(x), kr.alloc(wk), kr.alloc(wr), y.addr, scratch, batch, steps,
         in_dim, units, flags, abi.UNARY_CODES[act], abi.UNARY_CODES[rec_act])
    ref = oracle.rnn(cell, x, kernel, recurrent, bias, recurrent_bias, flags, act, rec_act)
    assert_close(y.read(), ref)


def test_rnn_state_restarts_each_call(kr):
    cell, batch, steps, in_dim, units = "lstm", 2, 3, 2, 4
    rng = rng_for("rnn-restart")
    x = f32(rng.standard_normal((batch, steps, in_dim)))
    kernel = f32(rng.standard_normal((in_dim, 4 * units)))
    recurrent = f32(rng.standard_normal((units, 4 * units)) * 0.5)
    wk, wr = oracle.pack_rnn(kernel, recurrent, None, None, 4)
    scratch = kr.alloc(np.full(abi.rnn_scratch_per_row(cell, steps, units) * batch, 3.0, np.float32))
    args = [kr.alloc(x), kr.alloc(wk), kr.alloc(wr)]
    ref = oracle.rnn(cell, x, kernel, recurrent, None, None, 0, "tanh", "sigmoid")
    for _ in range(2):
        y = Out(kr, (batch, units))
        call(kr, "rnn", abi.CELL_CODES[cell], *args[:3], y.addr, scratch, batch, steps, in_dim, units, 0,
             abi.UNARY_CODES["tanh"], abi.UNARY_CODES["sigmoid"])
        assert_close(y.read(), ref)


def test_rnn_nan_propagates_per_row(kr):
    cell, batch, steps, in_dim, units = "gru", 3, 3, 2, 5
    rng = rng_for("rnn-nan")
    x = f32(rng.standard_normal((batch, steps, in_dim)))
    x[1, 1, 0] = np.nan
    kernel = f32(rng.standard_normal((in_dim, 3 * units)))
    recurrent = f32(rng.standard_normal((units, 3 * units)) * 0.5)
    wk, wr = oracle.pack_rnn(kernel, recurrent, None, None, 3)
    scratch = kr.alloc_zeros(abi.rnn_scratch_per_row(cell, steps, units) * batch)
    y = Out(kr, (batch, steps, units))
    call(kr, "rnn", abi.CELL_CODES[cell], kr.alloc(x), kr.alloc(wk), kr.alloc(wr), y.addr, scratch, batch, steps,
         in_dim, units, abi.RNN_RETURN_SEQUENCES, abi.UNARY_CODES["tanh"], abi.UNARY_CODES["sigmoid"])
    ref = oracle.rnn(cell, x, kernel, recurrent, None, None, abi.RNN_RETURN_SEQUENCES, "tanh", "sigmoid")
    assert np.isnan(ref[1, 1:]).all() and not np.isnan(ref[[0, 2]]).any()
    assert_close(y.read(), ref)
