"""The ES5 kernel set on each engine: generic kernels vs specialized ones vs tfjs 4.22, per model.

    python benchmarks/kernels_es5.py [--engines quickjs,duktape,v8] [--models wine,digits_cnn]
                                     [--no-tfjs] [--repeats 5] [--json out.json]

Each reference model (jsengine_ml/reference_models) is written by hand as a plan of kernel calls
over one heap, with its real weights packed as docs/compiled-runtime.md says; the plan is first
checked against the model's golden outputs (Keras), then timed inside JS (Date.now() around
repeated runs of the whole plan on one batch). "generic" calls the kernels of
``__jsml.es5Kernels``; "specialized" calls what ``specialize(name, args)`` returned for each call
(or the generic kernel when it declined). tfjs is the same model loaded with
``jsengine_ml.load(..., runtime="tfjs")`` on the same engine, timed from Python around
``predict`` (transfers included), at batch 1,000 on interpreters (fewer rows when one call would
take over TFJS_SECONDS). The contenders of a model are measured in rounds (one measurement each
per round) so that they share the machine's load; throughputs are medians over the rounds, rows/s.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import jsengine_ml
from jsengine_ml.compiled import abi
from jsengine_ml.testing import read_layers_weights

ROOT = Path(__file__).resolve().parents[1]
KERNELS_JS = ROOT / "jsengine_ml" / "compiled" / "kernels_es5.js"
MODELS_DIR = ROOT / "jsengine_ml" / "reference_models"
INF = math.inf
U = abi.UNARY_CODES

#: Rows per timed batch, per engine: (kernels, tfjs at most).
BATCH = {"v8": (10_000, 10_000), "quickjs": (10_000, 1_000), "duktape": (1_000, 1_000)}
#: Minimum duration of one timed measurement (seconds).
MIN_SECONDS = 0.3
#: Longest tfjs predict call wanted (seconds): its batch shrinks to fit (tfjs on Duktape runs an
#: LSTM at ~10 rows/s).
TFJS_SECONDS = 4.0

_HARNESS = r"""
var __kb = {
  plans: {},
  // A plan: its own heap and kernel set; steps [[name, [args]], ...] (Infinity spelled 'inf').
  init: function (label, bytes) {
    var heap = new ArrayBuffer(bytes);
    __kb.plans[label] = { heap: heap, ks: __jsml.es5Kernels.create(heap), steps: [] };
    return 0;
  },
  write: function (label, addr, typed) {
    new Uint8Array(__kb.plans[label].heap, addr, typed.byteLength).set(
      new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
    return 0;
  },
  read: function (label, addr, count) {
    return new Float32Array(__kb.plans[label].heap.slice(addr, addr + 4 * count));
  },
  // Returns [calls specialized, ms spent specializing].
  compile: function (label, stepsJson, special) {
    var plan = __kb.plans[label], steps = JSON.parse(stepsJson), made = 0, t0 = Date.now();
    for (var i = 0; i < steps.length; i++) {
      var name = steps[i][0], args = steps[i][1], fn = null;
      for (var j = 0; j < args.length; j++) {
        if (args[j] === 'inf') { args[j] = Infinity; } else if (args[j] === '-inf') { args[j] = -Infinity; }
      }
      if (special) { fn = plan.ks.specialize(name, args); }
      if (fn) { made++; } else { fn = plan.ks[name]; }
      plan.steps.push({ fn: fn, args: args, name: name });
    }
    return [made, Date.now() - t0];
  },
  // Runs the whole plan reps times; returns the milliseconds taken.
  run: function (label, reps) {
    var steps = __kb.plans[label].steps, t0 = Date.now();
    for (var r = 0; r < reps; r++) {
      for (var i = 0; i < steps.length; i++) {
        var status = steps[i].fn.apply(null, steps[i].args);
        if (status !== 0) { throw new Error(steps[i].name + ' returned ' + status); }
      }
    }
    return Date.now() - t0;
  }
};
"""


@dataclass
class Plan:
    """Buffers in one heap and the kernel calls over them."""

    blobs: list[tuple[int, np.ndarray]] = field(default_factory=list)
    steps: list[tuple[str, list[float]]] = field(default_factory=list)
    size: int = 64
    x: int = 0
    y: int = 0
    out_width: int = 0

    def put(self, array: np.ndarray) -> int:
        array = np.ascontiguousarray(array)
        addr = self.reserve(array.size)
        self.blobs.append((addr, array.reshape(-1)))
        return addr

    def reserve(self, count: int) -> int:
        addr = self.size
        self.size = (addr + 4 * max(count, 1) + 15) & ~15
        return addr

    def call(self, name: str, *args: float) -> None:
        assert len(args) == len(abi.KERNELS[name]), name
        self.steps.append((name, list(args)))


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def pack_rnn(w: dict[str, np.ndarray], prefix: str, gates: int) -> tuple[np.ndarray, np.ndarray]:
    kernel, recurrent, bias = w[f"{prefix}/kernel"], w[f"{prefix}/recurrent_kernel"], w[f"{prefix}/bias"]
    units = recurrent.shape[0]
    bias_in = bias if bias.ndim == 1 else bias[0]
    bias_rec = None if bias.ndim == 1 else bias[1]
    wk, wr = [], []
    for g in range(gates):
        cols = slice(g * units, (g + 1) * units)
        wk.append(abi.pack_dense(kernel[:, cols], bias_in[cols]))
        wr.append(abi.pack_dense(recurrent[:, cols], None if bias_rec is None else bias_rec[cols]))
    return np.concatenate(wk), np.concatenate(wr)


def plan_wine(w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    p, b = Plan(), x.shape[0]
    p.x = p.put(_f32(x))
    w1 = p.put(abi.pack_dense(w["hidden/kernel"], w["hidden/bias"]))
    w2 = p.put(abi.pack_dense(w["probs/kernel"], w["probs/bias"]))
    h, p.y = p.reserve(b * 64), p.reserve(b * 3)
    p.call("dense", p.x, w1, h, b, 13, 64, 0.0, INF)
    p.call("dense", h, w2, p.y, b, 64, 3, -INF, INF)
    p.call("softmax", p.y, p.y, b, 3, 1, 0)
    p.out_width = 3
    return p


def plan_digits(w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    p, b = Plan(), x.shape[0]
    p.x = p.put(_f32(x))
    w1 = p.put(abi.pack_dense(w["conv1/kernel"].reshape(9, 8), w["conv1/bias"]))
    w2 = p.put(abi.pack_dense(w["conv2/kernel"].reshape(72, 16), w["conv2/bias"]))
    w3 = p.put(abi.pack_dense(w["probs/kernel"], w["probs/bias"]))
    c1, s1 = p.reserve(b * 8 * 8 * 8), p.reserve(8 * 8 * 9)
    p1 = p.reserve(b * 4 * 4 * 8)
    c2, s2 = p.reserve(b * 4 * 4 * 16), p.reserve(4 * 4 * 72)
    p.y = p.reserve(b * 10)
    p.call("conv2d", p.x, w1, c1, s1, b, 8, 8, 1, 3, 3, 8, 1, 1, 1, 1, 1, 1, 8, 8, 0.0, INF)
    p.call("pool2d", c1, p1, b, 8, 8, 8, 2, 2, 2, 2, 0, 0, 4, 4, abi.POOL_CODES["max"])
    p.call("conv2d", p1, w2, c2, s2, b, 4, 4, 8, 3, 3, 16, 1, 1, 1, 1, 1, 1, 4, 4, 0.0, INF)
    p.call("dense", c2, w3, p.y, b, 256, 10, -INF, INF)  # Flatten of NHWC is a no-op
    p.call("softmax", p.y, p.y, b, 10, 1, 0)
    p.out_width = 10
    return p


def _plan_rnn(cell: str, prefix: str, w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    p, b = Plan(), x.shape[0]
    steps, in_dim = x.shape[1:]
    units = w[f"{prefix}/recurrent_kernel"].shape[0]
    reset_after = w[f"{prefix}/bias"].ndim == 2
    p.x = p.put(_f32(x))
    wk, wr = (p.put(a) for a in pack_rnn(w, prefix, abi.GATES[cell]))
    wd = p.put(abi.pack_dense(w["probs/kernel"], w["probs/bias"]))
    h, scratch, p.y = p.reserve(b * units), p.reserve(abi.rnn_scratch_per_row(cell, steps, units) * b), p.reserve(b * 2)
    flags = abi.RNN_RESET_AFTER if reset_after else 0
    p.call("rnn", abi.CELL_CODES[cell], p.x, wk, wr, h, scratch, b, steps, in_dim, units, flags, U["tanh"],
           U["sigmoid"])
    p.call("dense", h, wd, p.y, b, units, 2, -INF, INF)
    p.call("softmax", p.y, p.y, b, 2, 1, 0)
    p.out_width = 2
    return p


def plan_lstm(w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    return _plan_rnn("lstm", "lstm/lstm_cell", w, x)


def plan_gru(w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    return _plan_rnn("gru", "gru/gru_cell", w, x)


def plan_embedding(w: dict[str, np.ndarray], x: np.ndarray) -> Plan:
    p, b = Plan(), x.shape[0]
    p.x = p.put(np.asarray(x, np.int32))
    table = p.put(_f32(w["embedding/embeddings"]))
    w1 = p.put(abi.pack_dense(w["hidden/kernel"], w["hidden/bias"]))
    w2 = p.put(abi.pack_dense(w["probs/kernel"], w["probs/bias"]))
    e, g, h, p.y = p.reserve(b * 11 * 8), p.reserve(b * 8), p.reserve(b * 16), p.reserve(b * 2)
    p.call("embedding", p.x, table, e, b * 11, 40, 8)
    p.call("global_pool", e, g, b, 11, 8, abi.POOL_CODES["avg"])
    p.call("dense", g, w1, h, b, 8, 16, 0.0, INF)
    p.call("dense", h, w2, p.y, b, 16, 2, -INF, INF)
    p.call("softmax", p.y, p.y, b, 2, 1, 0)
    p.out_width = 2
    return p


MODELS = {
    "wine": plan_wine,
    "digits_cnn": plan_digits,
    "sequence_lstm": plan_lstm,
    "sequence_gru": plan_gru,
    "embedding": plan_embedding,
}


def _js_arg(v: float) -> float | str:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def load_plan(engine: jsengine_ml.Engine, label: str, plan: Plan, special: bool) -> tuple[int, int]:
    engine.eval(f"__kb.init({label!r}, {plan.size})")
    for addr, array in plan.blobs:
        engine.put_array("__kb_tmp", array)
        engine.eval(f"__kb.write({label!r}, {addr}, __kb_tmp)")
    steps = json.dumps([[name, [_js_arg(a) for a in args]] for name, args in plan.steps])
    made, ms = engine.call("__kb.compile", label, steps, special)
    return int(made), int(ms)


def batch_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(x, (rows, *x.shape[1:])))


class KernelContender:
    """One plan (generic or specialized kernels) loaded in an engine, timed inside JS."""

    def __init__(self, engine: jsengine_ml.Engine, model: str, special: bool, rows: int):
        self.engine, self.rows = engine, rows
        self.label = "specialized" if special else "generic"
        weights = read_layers_weights(MODELS_DIR / model)
        golden = np.load(MODELS_DIR / model / "golden.npz")
        check = MODELS[model](weights, golden["x"])
        load_plan(engine, "check", check, special)
        engine.eval("__kb.run('check', 1)")
        got = engine.get_array(f"__kb.read('check', {check.y}, {golden['y'].size})").reshape(golden["y"].shape)
        engine.eval("delete __kb.plans.check")
        self.max_diff = float(np.abs(got - golden["y"]).max())
        plan = MODELS[model](weights, batch_rows(golden["x"], rows))
        self.steps = len(plan.steps)
        self.specialized, self.specialize_ms = load_plan(engine, self.label, plan, special)
        engine.eval(f"__kb.run({self.label!r}, 1)")  # warm-up (and first compilation on V8)
        self.reps = 1
        while True:  # calibrate: one measurement lasts at least MIN_SECONDS
            ms = float(engine.eval(f"__kb.run({self.label!r}, {self.reps})"))
            if ms >= MIN_SECONDS * 1000:
                break
            self.reps = max(self.reps * 2, int(self.reps * MIN_SECONDS * 1000 / max(ms, 1.0) * 1.2))

    def measure(self) -> float:
        ms = float(self.engine.eval(f"__kb.run({self.label!r}, {self.reps})"))
        return self.rows * self.reps / (ms / 1000.0)


class TfjsContender:
    """The same model on tfjs 4.22 in the same kind of engine, timed from Python around predict."""

    def __init__(self, backend: str, model: str):
        golden = np.load(MODELS_DIR / model / "golden.npz")
        self.model = jsengine_ml.load(MODELS_DIR / model, backend=backend, runtime="tfjs")
        probe = batch_rows(golden["x"], 100)
        self.model.predict(probe)
        t0 = time.perf_counter()
        self.model.predict(probe)
        per_row = (time.perf_counter() - t0) / 100
        self.rows = int(min(BATCH[backend][1], max(100, TFJS_SECONDS / per_row)) // 100 * 100)
        self.x = batch_rows(golden["x"], self.rows)

    def measure(self) -> float:
        t0 = time.perf_counter()
        self.model.predict(self.x)
        return self.rows / (time.perf_counter() - t0)

    def close(self) -> None:
        self.model.close()


def bench(backend: str, model: str, repeats: int, tfjs: bool) -> dict[str, float | int | str | None]:
    """Medians over `repeats` rounds, each round measuring every contender once (same load)."""
    with jsengine_ml.create_engine(backend) as engine:
        engine.eval_file(KERNELS_JS)
        engine.exec(_HARNESS, filename="kernels_es5_bench.js")
        generic = KernelContender(engine, model, False, BATCH[backend][0])
        special = KernelContender(engine, model, True, BATCH[backend][0])
        contenders: dict[str, KernelContender | TfjsContender] = {"generic": generic, "specialized": special}
        if tfjs:
            contenders["tfjs"] = TfjsContender(backend, model)
        try:
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(repeats):
                for name, contender in contenders.items():
                    rates[name].append(contender.measure())
        finally:
            if tfjs:
                contenders["tfjs"].close()  # type: ignore[union-attr]
    result: dict[str, float | int | str | None] = {name: statistics.median(r) for name, r in rates.items()}
    result.update(engine=backend, model=model, batch=BATCH[backend][0], steps=special.steps,
                  specialized_calls=special.specialized, specialize_ms=special.specialize_ms,
                  max_diff=max(generic.max_diff, special.max_diff),
                  tfjs_batch=contenders["tfjs"].rows if tfjs else None)  # type: ignore[union-attr]
    result.setdefault("tfjs", None)
    return result


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k" if v >= 1e3 else f"{v:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="quickjs,duktape,v8")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-tfjs", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    available = {b.name for b in jsengine_ml.available_backends() if b.available}
    engines = [e for e in args.engines.split(",") if e in available]
    rows_out = []
    print("| engine | model | batch (kernels / tfjs) | generic rows/s | specialized rows/s | spec / generic "
          "| tfjs rows/s | spec / tfjs | generic / tfjs | specialized calls | specialize ms | max diff vs golden |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in engines:
        for model in args.models.split(","):
            r = bench(backend, model, args.repeats, not args.no_tfjs)
            rows_out.append(r)
            tfjs = r["tfjs"]
            spec_ratio = r["specialized"] / r["generic"]
            tf_ratio = "–" if tfjs is None else f"{r['specialized'] / tfjs:.1f}×"
            gen_ratio = "–" if tfjs is None else f"{r['generic'] / tfjs:.1f}×"
            print(f"| {backend} | {model} | {r['batch']:,} / {r['tfjs_batch'] or 0:,} | {_fmt(r['generic'])} "
                  f"| {_fmt(r['specialized'])} | {spec_ratio:.1f}× | {_fmt(tfjs)} | {tf_ratio} | {gen_ratio} "
                  f"| {r['specialized_calls']}/{r['steps']} | {r['specialize_ms']} | {r['max_diff']:.1e} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows_out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
