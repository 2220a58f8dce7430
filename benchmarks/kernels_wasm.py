"""Time the WebAssembly kernels (jsengine_ml/compiled/kernels.wasm and kernels_relaxed.wasm) in mini-racer's
V8 against numpy.

    python benchmarks/kernels_wasm.py [--repeats 9] [--min-ms 40] [--batch 10000] [--trap-handler]

Cases: the ops of the two reference models at batch 10000 (--batch): the Wine MLP (dense 13->64 relu,
dense 64->3, softmax over 3) and the digits CNN (conv 8x8x1 -> 3x3x8 "same" relu, 2x2 max pool,
conv 4x4x8 -> 3x3x16 "same" relu, dense 256->10, softmax over 10), plus an LSTM(12) over 10 steps
of 2 features. Both modules are instantiated in one V8 context, each over its own memory holding
the same data, and timed in turn (interleaved repeats): for each, the CPU time per call (process
time over a timed loop of calls inside JS, median over repeats: on a shared, busy machine it moves
much less than wall time) and the largest difference from numpy float32 doing the same math
(matmul / einsum / np.max, single-threaded), whose time is given too.

V8 runs with the backend's flags (jsengine_ml.backends.v8.DEFAULT_FLAGS: Liftoff, then synchronous
tier-up to TurboFan); every kernel is called until it has tiered up before it is timed. mini-racer
does not enable V8's WebAssembly trap handler, so V8 bounds-checks every memory access explicitly;
--trap-handler enables it (through mini-racer's exported ``v8::V8::EnableWebAssemblyTrapHandler``,
before V8 starts) to show what the guard-page bounds checks would give.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# numpy single-threaded by default, like the wasm kernels (export OPENBLAS_NUM_THREADS=2 to compare with
# both cores; on a shared, busy machine multi-threaded BLAS mostly waits for the other core).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import py_mini_racer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsengine_ml.backends.v8 import DEFAULT_FLAGS  # noqa: E402
from jsengine_ml.compiled import abi  # noqa: E402

COMPILED = ROOT / "jsengine_ml" / "compiled"
MODULES = ("kernels.wasm", "kernels_relaxed.wasm")

JS = r"""
globalThis.bench = function (k, expr, calls) {  // CPU time is taken around this call, from Python
  var fn = new Function('K', 'return ' + expr + ';'), s = 0;
  for (var i = 0; i < calls; i++) { s |= fn(KS[k]); }
  if (s !== 0) { throw new Error(expr + ' returned ' + s); }
  return 0;
};
"""


def enable_trap_handler() -> bool:
    lib = ctypes.CDLL(str(Path(py_mini_racer.__file__).parent / "libmini_racer.so"))
    enable = lib._ZN2v82V828EnableWebAssemblyTrapHandlerEb
    enable.argtypes = [ctypes.c_bool]
    enable.restype = ctypes.c_bool
    return bool(enable(True))


class WasmHeap:
    """One module instantiated in a MiniRacer context (as KS[index]) over a memory numpy sees without copies."""

    def __init__(self, ctx: py_mini_racer.MiniRacer, index: int, module: Path, pages: int):
        self.ctx = ctx
        self.index = index
        data = module.read_bytes()
        staging = ctx.eval(f"globalThis.__wasm = new ArrayBuffer({len(data)})")
        np.frombuffer(staging, np.uint8)[:] = np.frombuffer(data, np.uint8)
        base = ctx.eval(
            f"globalThis.MS = globalThis.MS || []; globalThis.KS = globalThis.KS || [];"
            f"MS[{index}] = new WebAssembly.Memory({{initial: {pages}}});"
            f"KS[{index}] = new WebAssembly.Instance(new WebAssembly.Module(__wasm), {{env: {{memory: MS[{index}]}}}})"
            ".exports;"
            f"KS[{index}].__heap_base.value"
        )
        self.base = (int(base) + 15) & ~15
        self.heap = np.frombuffer(ctx.eval(f"MS[{index}].buffer"), np.float32)
        self.next = self.base

    def reset(self) -> None:
        self.next = self.base

    def alloc(self, count: int) -> int:
        addr = self.next
        self.next = (addr + 4 * max(count, 1) + 15) & ~15
        if self.next > 4 * self.heap.size:
            raise MemoryError("benchmark heap too small")
        return addr

    def put(self, array: np.ndarray) -> int:
        addr = self.alloc(array.size)
        self.heap[addr // 4 : addr // 4 + array.size] = np.asarray(array, np.float32).reshape(-1)
        return addr

    def read(self, addr: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.heap[addr // 4 : addr // 4 + math.prod(shape)].reshape(shape).copy()


@dataclass
class Case:
    name: str
    flops: float  # multiply-adds x 2 (0: not a matmul)
    call: str  # JS expression calling the kernel on K
    y_addr: int
    y_shape: tuple[int, ...]
    numpy: Callable[[], np.ndarray]


def js_num(v: float) -> str:
    return "Infinity" if v == math.inf else "-Infinity" if v == -math.inf else repr(float(v))


def dense_case(heap: WasmHeap, rng: np.random.Generator, m: int, k: int, n: int, relu: bool) -> Case:
    x = rng.standard_normal((m, k)).astype(np.float32)
    kernel = (rng.standard_normal((k, n)) / math.sqrt(k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    xa, wa, ya = heap.put(x), heap.put(abi.pack_dense(kernel, bias)), heap.alloc(m * n)
    lo = 0.0 if relu else -math.inf

    def ref() -> np.ndarray:
        y = x @ kernel + bias
        return np.maximum(y, 0, out=y) if relu else y

    return Case(f"dense {m}x{k}->{n}{' relu' if relu else ''}", 2.0 * m * k * n,
                f"K.dense({xa},{wa},{ya},{m},{k},{n},{js_num(lo)},Infinity)", ya, (m, n), ref)


def conv_case(heap: WasmHeap, rng: np.random.Generator, batch: int, hw: int, c: int, k: int, f: int) -> Case:
    x = rng.standard_normal((batch, hw, hw, c)).astype(np.float32)
    kernel = (rng.standard_normal((k, k, c, f)) / math.sqrt(k * k * c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    pad = (k - 1) // 2  # "same", stride 1
    xa = heap.put(x)
    wa = heap.put(abi.pack_dense(kernel.reshape(k * k * c, f), bias))
    scratch = heap.alloc(hw * hw * k * k * c)
    ya = heap.alloc(batch * hw * hw * f)
    kernel2d = kernel.reshape(k * k * c, f)

    def ref() -> np.ndarray:  # im2col (a copy of the patches, rows in ky, kx, c order) and one matmul
        xp = np.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
        patches = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # b, y, x, c, ky, kx
        cols = patches.transpose(0, 1, 2, 4, 5, 3).reshape(batch * hw * hw, k * k * c)
        y = cols @ kernel2d + bias
        return np.maximum(y, 0, out=y).reshape(batch, hw, hw, f)

    call = (f"K.conv2d({xa},{wa},{ya},{scratch},{batch},{hw},{hw},{c},{k},{k},{f},1,1,1,1,{pad},{pad},"
            f"{hw},{hw},0,Infinity)")
    return Case(f"conv2d {batch}x{hw}x{hw}x{c} -> {k}x{k}x{f} same, relu", 2.0 * batch * hw * hw * k * k * c * f,
                call, ya, (batch, hw, hw, f), ref)


def pool_case(heap: WasmHeap, rng: np.random.Generator, batch: int, hw: int, c: int) -> Case:
    x = np.maximum(rng.standard_normal((batch, hw, hw, c)), 0).astype(np.float32)
    xa, ya = heap.put(x), heap.alloc(batch * (hw // 2) ** 2 * c)
    out = hw // 2

    def ref() -> np.ndarray:
        return x.reshape(batch, out, 2, out, 2, c).max(axis=(2, 4))

    call = f"K.pool2d({xa},{ya},{batch},{hw},{hw},{c},2,2,2,2,0,0,{out},{out},{abi.POOL_CODES['max']})"
    return Case(f"max pool 2x2 {batch}x{hw}x{hw}x{c}", 0.0, call, ya, (batch, out, out, c), ref)


def softmax_case(heap: WasmHeap, rng: np.random.Generator, rows: int, cols: int) -> Case:
    x = (rng.standard_normal((rows, cols)) * 3).astype(np.float32)
    xa, ya = heap.put(x), heap.alloc(rows * cols)

    def ref() -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return Case(f"softmax {rows}x{cols}", 0.0, f"K.softmax({xa},{ya},{rows},{cols},1,0)", ya, (rows, cols), ref)


def lstm_case(heap: WasmHeap, rng: np.random.Generator, batch: int, steps: int, in_dim: int, units: int) -> Case:
    x = rng.standard_normal((batch, steps, in_dim)).astype(np.float32)
    kernel = (rng.standard_normal((in_dim, 4 * units)) * 0.5).astype(np.float32)
    recurrent = (rng.standard_normal((units, 4 * units)) / math.sqrt(units)).astype(np.float32)
    bias = (rng.standard_normal(4 * units) * 0.1).astype(np.float32)
    wk = np.concatenate([abi.pack_dense(kernel[:, g * units : (g + 1) * units], bias[g * units : (g + 1) * units])
                         for g in range(4)])
    wr = np.concatenate([abi.pack_dense(recurrent[:, g * units : (g + 1) * units]) for g in range(4)])
    xa, wka, wra = heap.put(x), heap.put(wk), heap.put(wr)
    scratch = heap.alloc(abi.rnn_scratch_per_row("lstm", steps, units) * batch)
    ya = heap.alloc(batch * units)

    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    def ref() -> np.ndarray:
        xw = np.einsum("bti,ig->btg", x, kernel, optimize=True) + bias
        h = np.zeros((batch, units), np.float32)
        c = np.zeros((batch, units), np.float32)
        for t in range(steps):
            z = xw[:, t] + h @ recurrent
            i, f, g, o = (z[:, j * units : (j + 1) * units] for j in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        return h

    call = (f"K.rnn({abi.CELL_CODES['lstm']},{xa},{wka},{wra},{ya},{scratch},{batch},{steps},{in_dim},{units},0,"
            f"{abi.UNARY_CODES['tanh']},{abi.UNARY_CODES['sigmoid']})")
    return Case(f"lstm({units}) {batch}x{steps}x{in_dim}", 2.0 * batch * steps * (in_dim + units) * 4 * units,
                call, ya, (batch, units), ref)


BUILDERS: list[Callable[[WasmHeap, np.random.Generator, int], Case]] = [
    lambda h, rng, b: dense_case(h, rng, b, 13, 64, True),
    lambda h, rng, b: dense_case(h, rng, b, 64, 3, False),
    lambda h, rng, b: softmax_case(h, rng, b, 3),
    lambda h, rng, b: conv_case(h, rng, b, 8, 1, 3, 8),
    lambda h, rng, b: pool_case(h, rng, b, 8, 8),
    lambda h, rng, b: conv_case(h, rng, b, 4, 8, 3, 16),
    lambda h, rng, b: dense_case(h, rng, b, 256, 10, False),
    lambda h, rng, b: softmax_case(h, rng, b, 10),
    lambda h, rng, b: lstm_case(h, rng, b, 10, 2, 12),
]


def cpu_ms_per_call(ctx: py_mini_racer.MiniRacer, index: int, call: str, calls: int) -> float:
    t0 = time.process_time()
    ctx.eval(f"bench({index}, {json.dumps(call)}, {calls})")
    return (time.process_time() - t0) / calls * 1e3


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run(args: argparse.Namespace) -> None:
    trap = enable_trap_handler() if args.trap_handler else False
    py_mini_racer.init_mini_racer(flags=DEFAULT_FLAGS, ignore_duplicate_init=True)
    ctx = py_mini_racer.MiniRacer()
    try:
        pages = max(64, (700 * 4 * args.batch + (4 << 20)) >> 16)  # the largest case: the LSTM, ~600 floats a row
        heaps = [WasmHeap(ctx, i, COMPILED / name, pages) for i, name in enumerate(MODULES)]
        ctx.eval(JS)
        sizes = ", ".join(f"{name} {(COMPILED / name).stat().st_size} bytes" for name in MODULES)
        print(f"{sizes}; V8 {ctx.v8_version}, flags {' '.join(DEFAULT_FLAGS)}"
              f"{', trap handler' if trap else ', explicit bounds checks'}")
        header = (f"{'case':40s} {'kernels.wasm':>13s} {'relaxed':>10s} {'numpy':>10s}"
                  f"   {'GFLOP/s wasm / relaxed / numpy':>30s}   max |wasm - numpy|")
        print(header)
        print("-" * len(header))
        for build in BUILDERS:
            cases = []
            for heap in heaps:
                heap.reset()
                cases.append(build(heap, np.random.default_rng(0), args.batch))
            case = cases[0]
            # tier up, then calibrate the number of calls of one timed loop on the first module
            for heap, c in zip(heaps, cases, strict=True):
                cpu_ms_per_call(ctx, heap.index, c.call, 5)
            calls = max(1, int(args.min_ms / max(cpu_ms_per_call(ctx, 0, case.call, 3), 1e-3)))
            times: list[list[float]] = [[] for _ in heaps]
            for r in range(args.repeats):
                order = list(zip(heaps, cases, strict=True))
                for heap, c in order if r % 2 == 0 else order[::-1]:
                    times[heap.index].append(cpu_ms_per_call(ctx, heap.index, c.call, calls))
            ms = [statistics.median(t) for t in times]
            t_np = median_time(case.numpy, args.repeats)
            ref = case.numpy()
            errs = [float(np.max(np.abs(heap.read(c.y_addr, c.y_shape) - ref))) for heap, c in zip(heaps, cases,
                                                                                                   strict=True)]
            gf = " / ".join(f"{case.flops / t / 1e6:6.2f}" for t in (*ms, t_np)) if case.flops else ""
            print(f"{case.name:40s} {ms[0]:10.3f} ms {ms[1]:7.3f} ms {t_np:7.3f} ms   {gf:>30s}   "
                  + " / ".join(f"{e:.1e}" for e in errs))
    finally:
        ctx.close()  # an unclosed context that ran hot code can hang the interpreter at exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per measurement (median)")
    parser.add_argument("--min-ms", type=float, default=40.0, help="CPU time of one timed loop of calls in JS")
    parser.add_argument("--batch", type=int, default=10000, help="batch rows of every case")
    parser.add_argument("--trap-handler", action="store_true",
                        help="enable V8's WebAssembly trap handler (guard pages instead of explicit bounds checks)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
