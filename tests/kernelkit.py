"""Run single kernels of either kernel set inside an engine, on arrays placed in its linear memory.

    with KernelRunner(engine, "wasm") as kr:          # or "es5"
        x = kr.alloc(np.ones((4, 13), np.float32))
        w = kr.alloc(pack_dense(kernel, bias))
        y = kr.alloc_zeros(4 * 64)
        assert kr.call("dense", x, w, y, 4, 13, 64, -np.inf, np.inf) == 0
        out = kr.read(y, (4, 64))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jsengine_ml.compiled import abi
from jsengine_ml.engine import Engine

COMPILED = Path(__file__).resolve().parents[1] / "jsengine_ml" / "compiled"

_HARNESS = r"""
var __kk = {
  heap: null, k: null,
  initWasm: function (bytes, pages) {
    var memory = new WebAssembly.Memory({ initial: pages });
    var inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: memory } });
    __kk.memory = memory; __kk.k = inst.exports; __kk.heap = memory.buffer;
    return inst.exports.__heap_base.value;
  },
  initEs5: function (bytes) {
    __kk.heap = new ArrayBuffer(bytes);
    __kk.k = __jsml.es5Kernels.create(__kk.heap);
    return 16;
  },
  write: function (addr, typed) {
    var bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    new Uint8Array(__kk.heap, addr, typed.byteLength).set(bytes);
    return 0;
  },
  read: function (addr, count, code) {
    var T = code === 2 ? Int32Array : Float32Array;
    return new T(__kk.heap.slice(addr, addr + 4 * count));
  },
  call: function (name, args) {
    var f = __kk.k[name];
    if (typeof f !== 'function') { throw new Error('kernel set has no kernel ' + name); }
    return f.apply(null, args);
  }
};
"""


class KernelRunner:
    """One kernel set loaded in ``engine`` over a fresh linear memory of ``heap_bytes``."""

    def __init__(self, engine: Engine, kind: str, heap_bytes: int = 32 << 20, module: str = "kernels.wasm"):
        self.engine = engine
        self.kind = kind
        self.module = module
        engine.exec(_HARNESS, filename="kernelkit.js")
        if kind == "wasm":
            engine.put_array("__kk_bytes", np.frombuffer((COMPILED / module).read_bytes(), dtype=np.uint8))
            base = engine.eval(f"__kk.initWasm(__kk_bytes, {heap_bytes >> 16})")
        elif kind == "es5":
            engine.eval_file(COMPILED / "kernels_es5.js")
            base = engine.eval(f"__kk.initEs5({heap_bytes})")
        else:
            raise ValueError(kind)
        self.limit = heap_bytes
        self.next = (int(base) + 15) & ~15

    def alloc_zeros(self, count: int, dtype: Any = np.float32) -> int:
        return self.alloc(np.zeros(count, dtype=dtype))

    def alloc(self, array: np.ndarray) -> int:
        array = np.ascontiguousarray(array)
        if array.dtype not in (np.float32, np.int32):
            raise TypeError(array.dtype)
        addr = self.next
        self.next = (addr + max(array.nbytes, 4) + 15) & ~15
        if self.next > self.limit:
            raise MemoryError("kernelkit heap is full")
        if array.size:
            self.engine.put_array("__kk_tmp", array.reshape(-1))
            self.engine.eval(f"__kk.write({addr}, __kk_tmp)")
        return addr

    def read(self, addr: int, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        count = int(np.prod(shape))
        code = 2 if np.dtype(dtype) == np.int32 else 1
        return self.engine.get_array(f"__kk.read({addr}, {count}, {code})").reshape(shape)

    def call(self, name: str, *args: float) -> int:
        if name not in abi.KERNELS:
            raise KeyError(name)
        if len(args) != len(abi.KERNELS[name]):
            raise TypeError(f"{name} takes {abi.KERNELS[name]}, got {len(args)} arguments")
        js_args = ", ".join(_js_number(a) for a in args)
        return int(self.engine.eval(f"__kk.call({name!r}, [{js_args}])"))


def _js_number(value: float) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)
