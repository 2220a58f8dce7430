"""Time the WebAssembly kernels (jsengine_ml/compiled/kernels.wasm) in mini-racer's V8 against numpy.

    python benchmarks/kernels_wasm.py [--repeats 7] [--min-ms 40]

Cases: dense 10000x13->64 relu, dense 10000x64->3, the digits CNN's two convolutions at batch
10000 (8x8x1 -> 3x3x8 "same", 4x4x8 -> 3x3x16 "same"), and an LSTM(12) over 10 steps of 2
features at batch 10000. For each: the kernel time measured inside JS (median over repeats of a
timed loop of calls), the end-to-end time from Python (write the input into the wasm memory through
a zero-copy view, one eval crossing that calls the kernel, copy the output out; median), and numpy
float32 doing the same math (matmul / einsum; numpy's BLAS may use both cores), with GFLOP/s of the
multiply-adds. numpy runs single-threaded unless OPENBLAS_NUM_THREADS says otherwise.

V8 is initialized with ``--single-threaded --no-liftoff`` before any context exists, so the module
is compiled by TurboFan. mini-racer's V8 has no ``performance`` object and the project's shim maps
``performance.now`` to ``Date.now`` (1 ms resolution), so the in-JS time is taken around a loop of
calls long enough (``--min-ms``) for that resolution not to matter. The "(CPU)" column is the
process CPU time per call over the same loops (the V8 thread's; the Python thread sleeps meanwhile):
on a shared, busy machine it moves much less than wall time.
"""

from __future__ import annotations

import argparse
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

# Process-wide V8 flags: must come before the first MiniRacer (or jsengine_ml engine) is created.
py_mini_racer.init_mini_racer(flags=("--single-threaded", "--no-liftoff"), ignore_duplicate_init=True)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsengine_ml.compiled import abi  # noqa: E402

WASM = Path(os.environ.get("JSML_BENCH_WASM", ROOT / "jsengine_ml" / "compiled" / "kernels.wasm"))

JS = r"""
globalThis.performance = globalThis.performance || { now: function () { return Date.now(); } };
globalThis.bench = function (expr, minMs, repeats) {
  var fn = new Function('K', 'return ' + expr + ';');
  var status = fn(K);
  if (status !== 0) { throw new Error(expr + ' returned ' + status); }
  var n = 1, calls = 1, t0, dt;
  for (;;) {  // calibrate: n calls take at least minMs
    t0 = performance.now();
    for (var i = 0; i < n; i++) { fn(K); }
    dt = performance.now() - t0;
    calls += n;
    if (dt >= minMs) { break; }
    n = dt <= 0 ? n * 4 : Math.max(n + 1, Math.ceil(n * 1.2 * minMs / dt));
  }
  var times = [];
  for (var r = 0; r < repeats; r++) {
    t0 = performance.now();
    for (var j = 0; j < n; j++) { fn(K); }
    times.push((performance.now() - t0) / n);
  }
  return JSON.stringify({times: times, calls: calls + repeats * n});
};
"""


class WasmHeap:
    """kernels.wasm instantiated in a MiniRacer context over a memory numpy sees without copies."""

    def __init__(self, ctx: py_mini_racer.MiniRacer, pages: int):
        self.ctx = ctx
        module = WASM.read_bytes()
        staging = ctx.eval(f"globalThis.__wasm = new ArrayBuffer({len(module)})")
        np.frombuffer(staging, np.uint8)[:] = np.frombuffer(module, np.uint8)
        base = ctx.eval(
            f"globalThis.__mem = new WebAssembly.Memory({{initial: {pages}}});"
            "globalThis.K = new WebAssembly.Instance(new WebAssembly.Module(__wasm), {env: {memory: __mem}}).exports;"
            "K.__heap_base.value"
        )
        self.base = (int(base) + 15) & ~15
        self.heap = np.frombuffer(ctx.eval("__mem.buffer"), np.float32)
        self.next = self.base
        ctx.eval(JS)

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
        self.write(addr, array)
        return addr

    def write(self, addr: int, array: np.ndarray) -> None:
        self.heap[addr // 4 : addr // 4 + array.size] = np.asarray(array, np.float32).reshape(-1)

    def read(self, addr: int, shape: tuple[int, ...]) -> np.ndarray:
        count = math.prod(shape)
        return self.heap[addr // 4 : addr // 4 + count].reshape(shape).copy()


@dataclass
class Case:
    name: str
    flops: float
    call: str  # JS expression calling the kernel on K
    x: np.ndarray  # the input written from Python in the end-to-end timing
    x_addr: int
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
                f"K.dense({xa},{wa},{ya},{m},{k},{n},{js_num(lo)},Infinity)", x, xa, ya, (m, n), ref)


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
                call, x, xa, ya, (batch, hw, hw, f), ref)


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
                call, x, xa, ya, (batch, units), ref)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run(args: argparse.Namespace) -> None:
    import json

    ctx = py_mini_racer.MiniRacer()
    try:
        heap = WasmHeap(ctx, pages=1200)  # 75 MiB
        rng = np.random.default_rng(0)
        builders = [
            lambda: dense_case(heap, rng, 10000, 13, 64, True),
            lambda: dense_case(heap, rng, 10000, 64, 3, False),
            lambda: conv_case(heap, rng, 10000, 8, 1, 3, 8),
            lambda: conv_case(heap, rng, 10000, 4, 8, 3, 16),
            lambda: lstm_case(heap, rng, 10000, 10, 2, 12),
        ]
        print(f"kernels.wasm: {WASM.stat().st_size} bytes; V8 {ctx.v8_version}, flags --single-threaded --no-liftoff")
        header = (f"{'case':40s} {'wasm in JS':>11s} {'(CPU)':>9s} {'end-to-end':>11s} {'numpy':>10s}"
                  f"   {'GFLOP/s wasm / numpy':>20s}")
        print(header)
        print("-" * len(header))
        for build in builders:
            heap.reset()
            case = build()
            cpu0 = time.process_time()
            result = json.loads(ctx.eval(f"bench({json.dumps(case.call)}, {args.min_ms}, {args.repeats})"))
            t_cpu = (time.process_time() - cpu0) / result["calls"] * 1e3
            t_js = statistics.median(result["times"])

            def end_to_end(case: Case = case) -> np.ndarray:
                heap.write(case.x_addr, case.x)
                status = ctx.eval(case.call)
                if status != 0:
                    raise RuntimeError(f"{case.call} returned {status}")
                return heap.read(case.y_addr, case.y_shape)

            t_e2e = median_time(end_to_end, args.repeats)
            t_np = median_time(case.numpy, args.repeats)
            err = float(np.max(np.abs(end_to_end() - case.numpy())))
            gf_js, gf_np = case.flops / t_js / 1e6, case.flops / t_np / 1e6
            print(f"{case.name:40s} {t_js:8.3f} ms {t_cpu:6.3f} ms {t_e2e:8.3f} ms {t_np:7.3f} ms"
                  f"   {gf_js:8.2f} / {gf_np:6.2f}   (max |wasm - numpy| {err:.1e})")
    finally:
        ctx.close()  # an unclosed context that ran hot code can hang the interpreter at exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement (median)")
    parser.add_argument("--min-ms", type=float, default=40.0, help="minimum length of one timed loop in JS")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
